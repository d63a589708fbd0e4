# Cross-compiling for Bela (BeagleBone Black, Cortex-A8, NEON, hard float).
# Tests run under qemu-arm when it is installed.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR armv7l)
set(CMAKE_C_COMPILER arm-linux-gnueabihf-gcc)
set(CMAKE_CXX_COMPILER arm-linux-gnueabihf-g++)
set(CMAKE_C_FLAGS_INIT "-march=armv7-a -mtune=cortex-a8 -mfpu=neon -mfloat-abi=hard")
set(CMAKE_CXX_FLAGS_INIT "-march=armv7-a -mtune=cortex-a8 -mfpu=neon -mfloat-abi=hard")
set(CMAKE_FIND_ROOT_PATH /usr/arm-linux-gnueabihf /usr/lib/arm-linux-gnueabihf)
set(CMAKE_LIBRARY_ARCHITECTURE arm-linux-gnueabihf)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)
set(ENV{PKG_CONFIG_LIBDIR} /usr/lib/arm-linux-gnueabihf/pkgconfig:/usr/share/pkgconfig)
# qemu-arm runs the tests with Debian's armhf C library (libc6:armhf, which the
# armhf -dev packages bring), the one their libuv, NNG and libsodium are built
# against: `-L /`. With the cross toolchain's copy (-L /usr/arm-linux-gnueabihf)
# every program that starts a thread crashed under qemu 7.2.
find_program(TUTTI_QEMU_ARM qemu-arm)
if(TUTTI_QEMU_ARM)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${TUTTI_QEMU_ARM} -L /)
endif()
