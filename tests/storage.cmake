# Storage: template import (tarballs, directories, OCI layouts, docker archives, debootstrap),
# list/get/remove and overlay mounts, on real files (overlay tests need root; debootstrap needs
# BULKHEAD_TEST_DEBOOTSTRAP=1 and a reachable mirror).
file(GLOB STORAGE_TEST_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/storage/*.cpp)
add_executable(bulkhead_storage_tests ${STORAGE_TEST_SOURCES})
target_link_libraries(bulkhead_storage_tests PRIVATE bulkhead_storage nlohmann_json::nlohmann_json
                      PkgConfig::LIBARCHIVE GTest::gtest_main)
target_compile_definitions(bulkhead_storage_tests PRIVATE
  BULKHEAD_BUSYBOX_ROOTFS_SCRIPT="${CMAKE_CURRENT_SOURCE_DIR}/storage/make-busybox-rootfs.sh")
gtest_discover_tests(bulkhead_storage_tests TEST_PREFIX "storage." DISCOVERY_TIMEOUT 60
                     PROPERTIES TIMEOUT 1200)
