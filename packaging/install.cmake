# Installation layout (used by the Debian packaging): the daemon in sbin, the
# shell in bin, man pages in their sections. Included at the end of the
# top-level CMakeLists.txt, once every target exists.
include(GNUInstallDirs)
if(TARGET sisyd)
  install(TARGETS sisyd RUNTIME DESTINATION ${CMAKE_INSTALL_SBINDIR})
endif()
if(TARGET sisy-cli)
  install(TARGETS sisy-cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()
foreach(page sisy-cli.1 sisyd.8 sisyd.conf.5)
  if(EXISTS ${PROJECT_SOURCE_DIR}/man/${page})
    string(REGEX REPLACE ".*\\.([0-9])$" "\\1" sect ${page})
    install(FILES ${PROJECT_SOURCE_DIR}/man/${page}
            DESTINATION ${CMAKE_INSTALL_MANDIR}/man${sect})
  endif()
endforeach()
