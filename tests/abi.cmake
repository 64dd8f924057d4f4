# The C ABI (libbulkhead.so.0, docs/abi.md): bad input, callers from many threads (Python ctypes,
# Go cgo), and the installed package (pkg-config, find_package, examples/agent.c). All run on the
# host from /var/tmp; the agent's memory-limit step needs cgroup v2 controllers: tests/abi/run-vm-agent.sh.
enable_language(C)
add_executable(bulkhead_abi_bad_input ${CMAKE_CURRENT_SOURCE_DIR}/abi/bad_input.c)
target_link_libraries(bulkhead_abi_bad_input PRIVATE bulkhead_c)
set(abi_env BULKHEAD_BINARY=$<TARGET_FILE:bulkhead_cli>)
add_test(NAME abi.bad_input COMMAND bulkhead_abi_bad_input WORKING_DIRECTORY /var/tmp)
# Python and Go load the library into a runtime that is not built with ASan, which refuses to start
# unless libasan is preloaded into the interpreter itself; the sanitizer build keeps the C tests
# (bad_input, install) and these two run in the normal build.
find_package(Python3 COMPONENTS Interpreter)
if(Python3_FOUND AND NOT BULKHEAD_SANITIZE)
  add_test(NAME abi.python_threads
           COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/abi/test_threads.py $<TARGET_FILE:bulkhead_c> 8
           WORKING_DIRECTORY /var/tmp)
  set_tests_properties(abi.python_threads PROPERTIES TIMEOUT 300)
  list(APPEND abi_tests abi.python_threads)
endif()
find_program(BULKHEAD_GO go)
if(BULKHEAD_GO AND NOT BULKHEAD_SANITIZE)
  # GOTOOLCHAIN=local and no module dependencies: the test never reaches the network.
  add_test(NAME abi.go_threads COMMAND ${BULKHEAD_GO} test -count=1 ./...
           WORKING_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}/abi/go)
  set_tests_properties(abi.go_threads PROPERTIES TIMEOUT 600 ENVIRONMENT
    "GOTOOLCHAIN=local;GOFLAGS=-mod=mod;GOCACHE=${CMAKE_CURRENT_BINARY_DIR}/go-cache;GOPATH=${CMAKE_CURRENT_BINARY_DIR}/go-path;CGO_CFLAGS=-I${CMAKE_SOURCE_DIR}/include;CGO_LDFLAGS=-L$<TARGET_FILE_DIR:bulkhead_c> -Wl,-rpath,$<TARGET_FILE_DIR:bulkhead_c>;${abi_env}")
else()
  message(STATUS "go not found: abi.go_threads is not built (tests/install-deps.sh installs golang-go)")
endif()
add_test(NAME abi.install COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/abi/install-test.sh ${CMAKE_BINARY_DIR} ${CMAKE_SOURCE_DIR}
         WORKING_DIRECTORY /var/tmp)
set_tests_properties(abi.bad_input abi.install ${abi_tests} PROPERTIES ENVIRONMENT "${abi_env}")
