/*
 * tutti sonicpi: connects an unmodified Sonic Pi to tutti (cmd_sonicpi.c).
 *
 *   tutti sonicpi install    the init-file hook, the language extension and a
 *                            `scsynth` wrapper under ~/.sonic-pi/tutti
 *   tutti sonicpi uninstall  removes all of them again
 *   tutti sonicpi status     what is installed, and where
 *   tutti sonicpi scsynth    what the wrapper runs: the real scsynth with the
 *                            plugin, room for a session, and the plugin's
 *                            proxy on the port Sonic Pi talks to
 *
 * docs/sonicpi.md is the user's guide.
 */
#ifndef TUTTI_CLI_SONICPI_H
#define TUTTI_CLI_SONICPI_H

int cmd_sonicpi(int argc, char **argv);

#endif
