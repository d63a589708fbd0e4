# One install: everything where its users' tools find it (the folders are in
# cmake/TuttiInstallDirs.cmake), an uninstall, and the Debian package.
#
#   cmake --install BUILD [--prefix DIR]       install (DIR ~/.local: no root needed)
#   cmake --build BUILD --target uninstall     remove every file the last install
#                                              wrote, and tutti's own folders
#   cd BUILD && cpack -G DEB                   tutti_VERSION_ARCH.deb (configure
#                                              with -DCMAKE_INSTALL_PREFIX=/usr)
#
# The library, its header and CMake/pkg-config files, the program and the
# plugin are installed next to their targets; the rest is here.

# -------------------------------------------------------- the tutti program
if(TARGET tutti)
  # `tutti play` and `tutti sonicpi install` find the installed scripts, the
  # Sonic Pi extension and the plugin relative to the program (cli/cmd_play.c),
  # and a build tree's from the sources.
  target_compile_definitions(tutti PRIVATE
    TUTTI_BIN_TO_DATA_DIR="${TUTTI_BIN_TO_DATA_DIR}"
    TUTTI_BIN_TO_PLUGIN_DIR="${TUTTI_BIN_TO_PLUGIN_DIR}"
    TUTTI_BIN_TO_EXTENSION_DIR="${TUTTI_BIN_TO_EXTENSION_DIR}"
    TUTTI_SOURCE_DIR="${PROJECT_SOURCE_DIR}")

  # Manual pages, written from the program's own help texts
  # (scripts/manpages.py): tutti(1) and tutti-COMMAND(1) for every command.
  find_package(Python3 COMPONENTS Interpreter)
  if(Python3_FOUND AND NOT CMAKE_CROSSCOMPILING)
    set(TUTTI_MAN_DIR ${CMAKE_CURRENT_BINARY_DIR}/man)
    add_custom_command(OUTPUT ${TUTTI_MAN_DIR}/tutti.1
      COMMAND ${CMAKE_COMMAND} -E rm -rf ${TUTTI_MAN_DIR}
      COMMAND ${Python3_EXECUTABLE} ${PROJECT_SOURCE_DIR}/scripts/manpages.py
              $<TARGET_FILE:tutti> ${TUTTI_MAN_DIR}
      DEPENDS tutti ${PROJECT_SOURCE_DIR}/scripts/manpages.py
      COMMENT "Writing the manual pages" VERBATIM)
    add_custom_target(tutti_man ALL DEPENDS ${TUTTI_MAN_DIR}/tutti.1)
    install(DIRECTORY ${TUTTI_MAN_DIR}/ DESTINATION ${CMAKE_INSTALL_MANDIR}/man1
            FILES_MATCHING PATTERN "*.1")
  endif()
endif()

# ------------------------------------------------- what the program plays
# The main job (`tutti play`): the local session script with the OSC tools
# and examples it uses, in the same layout as in the sources.
install(PROGRAMS scripts/localsession.py DESTINATION ${TUTTI_INSTALL_DATA_DIR}/scripts)
install(DIRECTORY examples/ DESTINATION ${TUTTI_INSTALL_DATA_DIR}/examples
        PATTERN "__pycache__" EXCLUDE PATTERN "*.pyc" EXCLUDE)
# The Sonic Pi extension (`tutti sonicpi install` copies it into ~/.sonic-pi).
install(DIRECTORY sonicpi-ext/ DESTINATION ${TUTTI_INSTALL_DATA_DIR}/sonicpi-ext)

# ------------------------------------------------------ the scsynth plugin
# Into TUTTI_SC_PLUGIN_DIR when it is set; else by the prefix the install
# runs with: scsynth's own plugin folder for /usr, the quark's Extensions
# folder for any other (for ~/.local, the user's, which scsynth reads too).
if(TARGET TuttiProxy)
  if(TUTTI_SC_PLUGIN_DIR)
    install(TARGETS TuttiProxy LIBRARY DESTINATION ${TUTTI_SC_PLUGIN_DIR})
  else()
    install(CODE "
      if(CMAKE_INSTALL_PREFIX STREQUAL \"/usr\")
        set(tutti_plugin_dir \"${TUTTI_SC_SYSTEM_PLUGIN_DIR}\")
      else()
        set(tutti_plugin_dir \"${TUTTI_SC_EXTENSION_DIR}\")
      endif()
      file(INSTALL DESTINATION \"\${CMAKE_INSTALL_PREFIX}/\${tutti_plugin_dir}\" TYPE MODULE
           FILES \"$<TARGET_FILE:TuttiProxy>\")")
  endif()
endif()

# ------------------------------------------------ the SuperCollider quark
# sc/ (classes and help files) as a whole, into an Extensions folder sclang
# reads: no Quarks.install needed.
if(EXISTS ${PROJECT_SOURCE_DIR}/sc)
  install(DIRECTORY sc/ DESTINATION ${TUTTI_SC_EXTENSION_DIR})
endif()

# ------------------------------------------------------------------- docs
install(FILES README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(DIRECTORY docs/ DESTINATION ${CMAKE_INSTALL_DOCDIR})

# -------------------------------------------------------------- uninstall
if(NOT TARGET uninstall)
  add_custom_target(uninstall
    COMMAND ${CMAKE_COMMAND} -DMANIFEST=${CMAKE_CURRENT_BINARY_DIR}/install_manifest.txt
            -P ${PROJECT_SOURCE_DIR}/cmake/uninstall.cmake
    COMMENT "Removing what the last install wrote" VERBATIM)
endif()

# ------------------------------------------------------ the Debian package
# Dependencies: the shared libraries the program and the plugin link (found
# by dpkg-shlibdeps: libuv1, libnng1, libsodium23, liblo7, libc6), and what
# `tutti play` runs (scsynth, JACK, the session script with python3-liblo).
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME tutti)
set(CPACK_PACKAGE_VENDOR "tutti")
set(CPACK_PACKAGE_CONTACT "tutti developers <tutti@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "one live performance, many places: a shared session for SuperCollider and Sonic Pi")
set(CPACK_PACKAGE_DESCRIPTION
    "tutti lets musicians in different places play one live performance together: every
member's scsynth executes the same events, in the same order, at the same shared time.
This package holds the tutti program (hub, member, join/leave/status, verify, play,
bench), the scsynth plugin, the SuperCollider classes, the Sonic Pi extension,
the examples and the manual pages.")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION sound)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "supercollider-server, jackd2, python3, python3-liblo")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "supercollider-language, sonic-pi")
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
include(CPack)
