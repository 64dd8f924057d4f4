# Debian packages (issue 15 item 4, docs/packaging.md): in a build directory configured with
# -DCMAKE_INSTALL_PREFIX=/usr and built, `cpack -G DEB` makes four packages from the install
# components:
#   bulkhead         component bulkhead: the OCI runtime, its man page and bash completion
#   bulkheadd        component bulkheadd: bulkheadd, bulkheadctl, bulkhead-monitor (libexec), the unit
#   libbulkhead0     component libbulkhead: libbulkhead.so.0 (lib/CMakeLists.txt)
#   libbulkhead-dev  component libbulkhead-dev: bulkhead.h, the .so link, bulkhead.pc, the CMake package
# The prefix must be /usr at configure time, not only at packaging time: libbulkhead spawns
# ${bindir}/bulkhead and the unit names ${sbindir}/bulkheadd, both fixed when the build is configured,
# and GNUInstallDirs gives the multiarch libdir (lib/x86_64-linux-gnu) only for /usr.
set(BULKHEAD_DEB_RELEASE 1 CACHE STRING "Debian revision of the packages (the -N of VERSION-N)")
set(BULKHEAD_DEB_MAINTAINER "bulkhead maintainers <dev@bulkhead.example.org>"
    CACHE STRING "Maintainer field of the Debian packages")
set(BULKHEAD_DEB_VERSION ${PROJECT_VERSION}-${BULKHEAD_DEB_RELEASE})
set(deb_src ${CMAKE_SOURCE_DIR}/packaging/debian)
set(deb_out ${CMAKE_BINARY_DIR}/packaging/debian)

set(CPACK_PACKAGE_NAME bulkhead)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "${BULKHEAD_DEB_MAINTAINER}")
set(CPACK_GENERATOR DEB)
set(CPACK_COMPONENTS_ALL bulkhead bulkheadd libbulkhead libbulkhead-dev)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
# RelWithDebInfo binaries carry their debug info; the packages do not (lintian:
# unstripped-binary-or-object).
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE ${BULKHEAD_DEB_RELEASE})
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${BULKHEAD_DEB_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_COMPRESSION_TYPE xz)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
# Depends from dpkg-shlibdeps for the dynamically linked binaries (bulkheadd, bulkheadctl); the
# static ones (bulkhead, bulkhead-monitor) have none. libbulkhead0 is done apart, see below.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)

set(CPACK_DEBIAN_BULKHEAD_PACKAGE_NAME bulkhead)
set(CPACK_DEBIAN_BULKHEAD_PACKAGE_SUGGESTS "criu, uidmap")
set(CPACK_DEBIAN_BULKHEAD_DESCRIPTION "OCI container runtime (runc-compatible command line)
bulkhead runs containers from OCI bundles with the runc command line (create,
start, state, kill, delete, run, exec, pause, resume, update, events,
checkpoint, restore), so containerd, podman and other OCI clients can use it
in place of runc. It supports cgroup v1 and v2, seccomp, capabilities, user
namespaces and checkpoint/restore through CRIU.")

set(CPACK_DEBIAN_BULKHEADD_PACKAGE_NAME bulkheadd)
set(CPACK_DEBIAN_BULKHEADD_PACKAGE_DEPENDS "adduser")
# lxcfs gives containers their own /proc/meminfo, cpuinfo, uptime; e2fsprogs makes the ext4 images
# of --storage ext4; criu and debootstrap are for checkpoints and `template create --debootstrap`.
set(CPACK_DEBIAN_BULKHEADD_PACKAGE_RECOMMENDS "lxcfs, e2fsprogs")
set(CPACK_DEBIAN_BULKHEADD_PACKAGE_SUGGESTS "criu, debootstrap, bulkhead")
set(CPACK_DEBIAN_BULKHEADD_PACKAGE_CONTROL_EXTRA
    ${deb_src}/bulkheadd/postinst ${deb_src}/bulkheadd/prerm ${deb_src}/bulkheadd/postrm)
set(CPACK_DEBIAN_BULKHEADD_DESCRIPTION "hosting daemon for system containers from shared OS templates
bulkheadd runs system containers (a full init, from a shared read-only OS
template plus a private layer each) and serves an HTTP/JSON API on a unix
socket, which bulkheadctl drives: containers, templates, networks with NAT
and port forwards, disk quotas, snapshots, checkpoints, migration between
hosts. Each container has its own bulkhead-monitor process, so containers
keep running when the daemon stops or is upgraded.")

set(CPACK_DEBIAN_LIBBULKHEAD_PACKAGE_NAME libbulkhead0)
set(CPACK_DEBIAN_LIBBULKHEAD_PACKAGE_SECTION libs)
set(CPACK_DEBIAN_LIBBULKHEAD_PACKAGE_SUGGESTS "bulkheadd")
# CPack's own shlibs and ldconfig handling would add postinst/postrm scripts calling ldconfig, which
# Debian replaced by the ldconfig trigger (lintian: maintscript-calls-ldconfig). So CPack does not
# look at this package's files (SHLIBDEPS off; GENERATE_SHLIBS stays off for all), the shlibs file
# and the trigger are ours, and its Depends and symbols file come from dpkg-shlibdeps and nm run by
# the CPack project config file (packaging/deb-config.cmake.in) on the built library.
set(CPACK_DEBIAN_LIBBULKHEAD_PACKAGE_SHLIBDEPS OFF)
file(MAKE_DIRECTORY ${deb_out}/libbulkhead0)
file(WRITE ${deb_out}/libbulkhead0/shlibs "libbulkhead 0 libbulkhead0 (>= ${PROJECT_VERSION})\n")
# The symbols file is written by the project config file, from the built library.
set(CPACK_DEBIAN_LIBBULKHEAD_PACKAGE_CONTROL_EXTRA ${deb_out}/libbulkhead0/shlibs ${deb_out}/libbulkhead0/symbols
    ${deb_src}/libbulkhead0/triggers)
set(CPACK_DEBIAN_LIBBULKHEAD_DESCRIPTION "C library of the bulkhead container runtime and its daemon client
libbulkhead is the stable C ABI of bulkhead for programs that embed it, such
as PaaS agents in C, Go, Python or Rust: the OCI runtime's calls (create,
start, state, kill, delete, exec, update, stats, events, ...) and a client of
the bulkheadd API. It is safe to call from any thread: container work runs in
the bulkhead binary, which it spawns.")

set(CPACK_DEBIAN_LIBBULKHEAD-DEV_PACKAGE_NAME libbulkhead-dev)
set(CPACK_DEBIAN_LIBBULKHEAD-DEV_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_LIBBULKHEAD-DEV_PACKAGE_DEPENDS "libbulkhead0 (= ${BULKHEAD_DEB_VERSION})")
set(CPACK_DEBIAN_LIBBULKHEAD-DEV_DESCRIPTION "development files of libbulkhead, the bulkhead C ABI
The header bulkhead/bulkhead.h, the libbulkhead.so link, the pkg-config file
bulkhead.pc and the CMake package (find_package(bulkhead), target
bulkhead::bulkhead) for building programs against libbulkhead.")

# What Debian wants in every package besides the payload: the copyright, changelog.Debian.gz, and
# lintian overrides where a tag is a deliberate choice. EXCLUDE_FROM_ALL: a plain `cmake --install`
# does not install them; CPack installs each component by name, which includes them.
configure_file(${deb_src}/changelog.in ${deb_out}/changelog.Debian @ONLY)
# -n: no name or time stamp in the gzip header, so the package is reproducible.
execute_process(COMMAND gzip -9 -n -f ${deb_out}/changelog.Debian RESULT_VARIABLE gzip_status)
if(NOT gzip_status EQUAL 0)
  message(FATAL_ERROR "gzip -9 -n ${deb_out}/changelog.Debian failed: ${gzip_status}")
endif()
foreach(component IN LISTS CPACK_COMPONENTS_ALL)
  string(TOUPPER ${component} upper)
  set(package ${CPACK_DEBIAN_${upper}_PACKAGE_NAME})
  install(FILES ${deb_src}/copyright ${deb_out}/changelog.Debian.gz DESTINATION share/doc/${package}
          COMPONENT ${component} EXCLUDE_FROM_ALL)
  if(EXISTS ${deb_src}/${package}/lintian-overrides)
    install(FILES ${deb_src}/${package}/lintian-overrides DESTINATION share/lintian/overrides RENAME ${package}
            COMPONENT ${component} EXCLUDE_FROM_ALL)
  endif()
endforeach()

# Read by cpack: checks the prefix and adds libbulkhead0's Depends (see above).
configure_file(${CMAKE_SOURCE_DIR}/packaging/deb-config.cmake.in ${deb_out}/deb-config.cmake.in @ONLY)
file(GENERATE OUTPUT ${CMAKE_BINARY_DIR}/CPackProjectConfig.cmake INPUT ${deb_out}/deb-config.cmake.in)
set(CPACK_PROJECT_CONFIG_FILE ${CMAKE_BINARY_DIR}/CPackProjectConfig.cmake)
include(CPack)
