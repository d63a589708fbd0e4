# Where an install puts what scsynth, sclang and Sonic Pi look for, relative
# to the install prefix (so `cmake --install BUILD --prefix DIR` moves all of
# it together). Included before the targets; cmake/TuttiInstall.cmake
# installs what is not installed next to its target.
#
#   prefix /usr (the Debian package, a system install)
#     the plugin    lib/SuperCollider/plugins            Debian scsynth's plugin folder
#     the quark     share/SuperCollider/Extensions/tutti  sclang's system extensions
#   any other prefix, e.g. ~/.local (a user install, no root)
#     the plugin    share/SuperCollider/Extensions/tutti  ~/.local/share/SuperCollider/
#     the quark     share/SuperCollider/Extensions/tutti  Extensions is the user's
#                                                        folder scsynth and sclang read
#
# scsynth and sclang also read /usr/share/SuperCollider/Extensions, so a
# build configured for ~/.local and installed with --prefix /usr works too.
# A prefix such as /usr/local is searched by neither: scsynth then needs
# -U PREFIX/share/SuperCollider/Extensions/tutti:/usr/lib/SuperCollider/plugins.
include(GNUInstallDirs)

set(TUTTI_SC_EXTENSION_DIR "${CMAKE_INSTALL_DATADIR}/SuperCollider/Extensions/tutti" CACHE STRING
    "Where the SuperCollider quark (classes, help) is installed, relative to the prefix")
# Empty: chosen by the prefix when installing (cmake --install --prefix may
# differ from the configured one): lib/SuperCollider/plugins for /usr, else
# TUTTI_SC_EXTENSION_DIR.
set(TUTTI_SC_PLUGIN_DIR "" CACHE STRING
    "Where the scsynth plugin is installed, relative to the prefix or absolute (empty: by the prefix)")
set(TUTTI_SC_SYSTEM_PLUGIN_DIR "lib/SuperCollider/plugins")
# The examples, the local session's scripts and the Sonic Pi extension.
set(TUTTI_INSTALL_DATA_DIR "${CMAKE_INSTALL_DATADIR}/tutti")

# The installed program finds the rest relative to its own folder (so a
# relocated prefix still works): `tutti play` its scripts and the plugin,
# `tutti sonicpi install` the extension and the plugin.
function(tutti_from_bindir out dir)
  if(IS_ABSOLUTE "${dir}")
    set(${out} "${dir}" PARENT_SCOPE)
  else()
    file(RELATIVE_PATH rel "/prefix/${CMAKE_INSTALL_BINDIR}" "/prefix/${dir}")
    set(${out} "${rel}" PARENT_SCOPE)
  endif()
endfunction()
if(TUTTI_SC_PLUGIN_DIR)
  tutti_from_bindir(TUTTI_BIN_TO_PLUGIN_DIR "${TUTTI_SC_PLUGIN_DIR}")
else()
  tutti_from_bindir(TUTTI_BIN_TO_PLUGIN_DIR "${TUTTI_SC_SYSTEM_PLUGIN_DIR}")
endif()
tutti_from_bindir(TUTTI_BIN_TO_EXTENSION_DIR "${TUTTI_SC_EXTENSION_DIR}")
tutti_from_bindir(TUTTI_BIN_TO_DATA_DIR "${TUTTI_INSTALL_DATA_DIR}")
