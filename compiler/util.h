/* util.h — arenas, growable arrays, string helpers and the internal assert shared by the compiler. */
#ifndef NETC_UTIL_H
#define NETC_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* An arena: every AST/IR object of one compilation comes from it and is freed at once. */
typedef struct ArenaBlock ArenaBlock;
typedef struct Arena {
    ArenaBlock *head;
} Arena;

void *arena_alloc(Arena *a, size_t size);          /* zeroed, 16-byte aligned; aborts on OOM */
char *arena_strdup(Arena *a, const char *s);
char *arena_strndup(Arena *a, const char *s, size_t n);
char *arena_printf(Arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void arena_free(Arena *a);

/* Growable array of pointers (heap, not arena: it can outlive or be rebuilt by passes). */
typedef struct PtrVec {
    void **items;
    int len, cap;
} PtrVec;
void ptrvec_push(PtrVec *v, void *p);
void ptrvec_free(PtrVec *v);

/* heap helpers that never return NULL (abort with a message on OOM) */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);

/* Edit distance, for "did you mean" suggestions. */
int util_edit_distance(const char *a, const char *b);

/* Read a whole file; NULL and *err set (static string from strerror) on failure. */
char *util_read_file(const char *path, size_t *len, const char **err);

/* Internal invariant: a failure is a bug in netc, reported with __FILE__:__LINE__ (exit 3). */
#define NETC_ASSERT(c)                                                                         \
    do {                                                                                       \
        if (!(c)) netc_internal_error(__FILE__, __LINE__, #c);                                 \
    } while (0)
_Noreturn void netc_internal_error(const char *file, int line, const char *what);

#endif
