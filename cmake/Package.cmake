# The Debian package (scripts/package): install rules for a node and CPack's
# DEB generator. Dependencies come from dpkg-shlibdeps; the config is a
# conffile; the maintainer scripts create the sync-agent user, its state
# directory and /srv/mirror (packaging/).
include(GNUInstallDirs)
set(SA_PKG ${PROJECT_SOURCE_DIR}/packaging)
set(SA_PKG_OUT ${PROJECT_BINARY_DIR}/packaging)
file(MAKE_DIRECTORY ${SA_PKG_OUT})

# Debian wants compressed man pages and changelogs, reproducibly (gzip -n);
# a native package (no Debian revision) names its changelog changelog.gz.
foreach(pair "sync-agent.1:sync-agent.1.gz" "changelog:changelog.gz")
  string(REPLACE ":" ";" parts ${pair})
  list(GET parts 0 src)
  list(GET parts 1 dst)
  add_custom_command(OUTPUT ${SA_PKG_OUT}/${dst}
                     COMMAND gzip -9n -c ${SA_PKG}/${src} > ${SA_PKG_OUT}/${dst}
                     DEPENDS ${SA_PKG}/${src} VERBATIM)
  list(APPEND SA_PKG_GZ ${SA_PKG_OUT}/${dst})
endforeach()
add_custom_target(sa_package_docs ALL DEPENDS ${SA_PKG_GZ})

install(FILES ${SA_PKG_OUT}/sync-agent.1.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES ${SA_PKG}/copyright ${SA_PKG_OUT}/changelog.gz
        DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(FILES ${PROJECT_SOURCE_DIR}/scripts/nginx-mirror.conf.example
              ${PROJECT_SOURCE_DIR}/scripts/nginx-hub.conf.example
              ${PROJECT_SOURCE_DIR}/scripts/prometheus-alerts.yml
              ${PROJECT_SOURCE_DIR}/scripts/grafana-dashboard.json
        DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)
file(GLOB SA_UNITS ${PROJECT_SOURCE_DIR}/systemd/*.service ${PROJECT_SOURCE_DIR}/systemd/*.timer)
install(FILES ${SA_UNITS} DESTINATION lib/systemd/system)
install(FILES ${SA_PKG}/sync-agent.toml DESTINATION /etc/sync-agent)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME sync-agent)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "sync-agent developers <sync-agent@example.org>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "mirror node agent for model repositories")
# The body only: CPack puts the summary above it as the synopsis.
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION
    "sync-agent keeps model repositories (weights, configs, tokenizers) in sync
on a mirror node from a publish root, a git remote with LFS or a Hugging
Face-compatible hub. It moves only what changed, verifies every byte by
sha256, records every revision in SQLite and swaps each new revision in
atomically; it serves the node's files and a Hub API, and reports status,
Prometheus metrics and download statistics.")
set(CPACK_DEBIAN_FILE_NAME "sync-agent_${PROJECT_VERSION}_amd64.deb")
set(CPACK_DEBIAN_PACKAGE_ARCHITECTURE amd64)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "nginx, prometheus-node-exporter")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${SA_PKG}/conffiles ${SA_PKG}/postinst ${SA_PKG}/prerm ${SA_PKG}/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_STRIP_FILES ON)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
include(CPack)
