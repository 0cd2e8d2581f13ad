/* thaw-lua: a static Lua 5.4 interpreter as a function for thaw's mini
 * guest runtime (thaw.after=program).
 *
 *   thaw-lua SCRIPT
 *
 * Loads SCRIPT (shipped with `thaw run --files`), which must return a
 * function, or define a global `handler`. Only then does it read stdin: the
 * first read of fd 0 is the ready point, so the interpreter's start-up and
 * the script's module loading are in the snapshot and never run again. Each
 * request: the whole of stdin is handler's one argument, what it returns
 * (tostring'd) is written to stdout. A Lua error is printed to stderr and
 * the status is 1.
 *
 * Built against Debian's liblua5.4-dev static library (liblua5.4.a). */
#include <stdio.h>
#include <stdlib.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

/* The request: stdin up to its end (the mailbox holds at most 1 MiB). */
static char *read_stdin(size_t *len) {
  size_t cap = 64 * 1024, n = 0;
  char *buf = malloc(cap);
  while (buf != NULL) {
    size_t got = fread(buf + n, 1, cap - n, stdin);
    n += got;
    if (got == 0) break;
    if (n == cap) {
      char *bigger = realloc(buf, cap * 2);
      if (bigger == NULL) free(buf);
      buf = bigger;
      cap *= 2;
    }
  }
  *len = n;
  return buf;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s SCRIPT (returns, or defines `handler`, a function of the request)\n", argv[0]);
    return 2;
  }
  lua_State *L = luaL_newstate();
  if (L == NULL) {
    fprintf(stderr, "thaw-lua: out of memory\n");
    return 1;
  }
  luaL_openlibs(L);
  /* Before the ready point: a script that fails here fails the template. */
  if (luaL_loadfile(L, argv[1]) != LUA_OK || lua_pcall(L, 0, 1, 0) != LUA_OK) {
    fprintf(stderr, "thaw-lua: %s\n", lua_tostring(L, -1));
    return 1;
  }
  if (!lua_isfunction(L, -1)) {
    lua_pop(L, 1);
    lua_getglobal(L, "handler");
    if (!lua_isfunction(L, -1)) {
      fprintf(stderr, "thaw-lua: %s returned no function and defines no global `handler`\n", argv[1]);
      return 1;
    }
  }

  size_t len = 0;
  char *input = read_stdin(&len); /* the ready point */
  if (input == NULL) {
    fprintf(stderr, "thaw-lua: out of memory for the request\n");
    return 1;
  }
  lua_pushlstring(L, input, len);
  free(input);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    fprintf(stderr, "thaw-lua: handler: %s\n", lua_tostring(L, -1));
    return 1;
  }
  size_t out_len = 0;
  const char *out = luaL_tolstring(L, -1, &out_len);
  fwrite(out, 1, out_len, stdout);
  return fflush(stdout) == 0 ? 0 : 1;
}
