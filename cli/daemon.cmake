add_executable(bulkheadd ${CMAKE_CURRENT_SOURCE_DIR}/bulkheadd.cpp)
target_link_libraries(bulkheadd PRIVATE bulkhead_daemon PkgConfig::LIBSYSTEMD)
install(TARGETS bulkheadd RUNTIME DESTINATION sbin)
