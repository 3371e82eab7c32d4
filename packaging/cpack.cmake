# packaging/cpack.cmake: what `cmake --install` and `cpack -G DEB` put where,
# beyond the binary (installed by the top-level CMakeLists.txt).
#
#   /usr/bin/wharf                                  top-level CMakeLists.txt
#   /usr/lib/systemd/system/wharf.service
#   /etc/wharf/wharf.yaml                           conffile
#   /etc/wharf/profiles/, /etc/wharf/schemas/       empty, for the operator
#   /var/lib/wharf/                                 state (owned by wharf in postinst)
#   /usr/share/man/man1/wharf.1.gz, man5/wharf-profile.5.gz
#   /usr/share/bash-completion/completions/wharf
#   /usr/sbin/wharf-add-partner                     partner SFTP accounts
#   /usr/share/wharf/sshd_config.d/wharf-partners.conf
#   /usr/share/doc/wharf/{configuration.md,partners.md,xsd.md,runbooks/}
#
# The package is built with prefix /usr; /etc and /var paths are absolute.
#   cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build
#   (cd build && cpack -G DEB)

set(WHARF_PKG_DIR ${CMAKE_CURRENT_SOURCE_DIR}/packaging)

# Man pages, gzipped at build time (Debian policy) when gzip is available.
find_program(WHARF_GZIP gzip)
set(WHARF_MANPAGES wharf.1 wharf-profile.5)
set(WHARF_MAN_OUTPUTS)
foreach(page ${WHARF_MANPAGES})
  string(REGEX REPLACE ".*\\.([0-9])$" "\\1" section ${page})
  if(WHARF_GZIP)
    set(out ${CMAKE_CURRENT_BINARY_DIR}/man/${page}.gz)
    add_custom_command(OUTPUT ${out}
      COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_CURRENT_BINARY_DIR}/man
      COMMAND ${WHARF_GZIP} -9n -c ${WHARF_PKG_DIR}/${page} > ${out}
      DEPENDS ${WHARF_PKG_DIR}/${page}
      COMMENT "Compressing man page ${page}"
      VERBATIM)
  else()
    set(out ${WHARF_PKG_DIR}/${page})
  endif()
  list(APPEND WHARF_MAN_OUTPUTS ${out})
  install(FILES ${out} DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section})
endforeach()
add_custom_target(wharf-man ALL DEPENDS ${WHARF_MAN_OUTPUTS})

install(FILES ${WHARF_PKG_DIR}/wharf.service DESTINATION lib/systemd/system)
install(FILES ${WHARF_PKG_DIR}/wharf.yaml DESTINATION /etc/wharf
        PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
install(DIRECTORY DESTINATION /etc/wharf/profiles)
install(DIRECTORY DESTINATION /etc/wharf/schemas)
install(DIRECTORY DESTINATION /var/lib/wharf)
install(FILES ${WHARF_PKG_DIR}/bash-completion/wharf
        DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions)
install(PROGRAMS ${WHARF_PKG_DIR}/add-partner
        DESTINATION ${CMAKE_INSTALL_SBINDIR} RENAME wharf-add-partner)
install(FILES ${WHARF_PKG_DIR}/sshd_config.d/wharf-partners.conf
        DESTINATION ${CMAKE_INSTALL_DATADIR}/wharf/sshd_config.d)
install(FILES ${CMAKE_CURRENT_SOURCE_DIR}/docs/configuration.md
              ${CMAKE_CURRENT_SOURCE_DIR}/docs/partners.md
              ${CMAKE_CURRENT_SOURCE_DIR}/docs/xsd.md
              ${CMAKE_CURRENT_SOURCE_DIR}/docs/scale-out.md
        DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}/runbooks/
        DESTINATION ${CMAKE_INSTALL_DOCDIR}/runbooks FILES_MATCHING PATTERN "*.md")

# Debian package
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME wharf)
set(CPACK_PACKAGE_VENDOR "wharf")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "wharf maintainers <wharf@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "managed batch-exchange server (SFTP and spool intake)")
set(CPACK_PACKAGE_DESCRIPTION
"wharf polls partners' SFTP drops and local spool directories, takes every
complete file exactly once, detects compression, encoding and format,
validates it against the feed's schema (XSD, Frictionless Table Schema),
loads accepted records into a target in one transaction, seals the original
in a checksummed, hash-chained BagIt archive and parks rejects with a
readable report for replay.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${CPACK_PACKAGE_CONTACT}")
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://example.invalid/wharf")
# Library dependencies from the binary itself (dpkg-shlibdeps, in dpkg-dev);
# without dpkg-shlibdeps the explicit list below is used instead.
find_program(WHARF_DPKG_SHLIBDEPS dpkg-shlibdeps)
if(WHARF_DPKG_SHLIBDEPS)
  set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
  set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
else()
  set(CPACK_DEBIAN_PACKAGE_DEPENDS
    "adduser, libssh2-1, libarchive13, libsqlite3-0, libxml2, libyaml-0-2, libjansson4, libssl3, libuchardet0, zlib1g, libpq5, libmicrohttpd12, libcrypt1")
endif()
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "openssh-server, sqlite3")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  ${WHARF_PKG_DIR}/debian/conffiles
  ${WHARF_PKG_DIR}/debian/postinst
  ${WHARF_PKG_DIR}/debian/prerm
  ${WHARF_PKG_DIR}/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
