#ifndef VQTAP_CNCURSES_SHIM_H
#define VQTAP_CNCURSES_SHIM_H
#define NCURSES_WIDECHAR 1
#include <ncursesw/curses.h>
#endif
