/*
 * l_filelock.h — the gallery's file functions (l_filelock.c), set into the
 * core.gallery table by sm_open_gallery.
 */
#ifndef L_FILELOCK_H
#define L_FILELOCK_H

#include <lua.h>

/* Adds lock, target and generation to the table on top of the stack. */
void sm_l_filelock_register(lua_State *L);

#endif
