add_executable(bulkheadd ${CMAKE_CURRENT_SOURCE_DIR}/bulkheadd.cpp)
target_link_libraries(bulkheadd PRIVATE bulkhead_daemon bulkhead_cli_docs PkgConfig::LIBSYSTEMD)
install(TARGETS bulkheadd RUNTIME DESTINATION sbin COMPONENT bulkheadd)
bulkhead_cli_docs_for(bulkheadd bulkheadd 8 bulkheadd)
