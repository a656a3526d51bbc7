/*
 * An intrusive hash table with string keys, for the modules' in-memory
 * indexes of things whose number grows with the outside (organisations,
 * executions waited for): a lookup costs the same with ten entries or a
 * million. The caller embeds an ee__hnode in its own struct, owns both and
 * does the locking; the table owns only its bucket array.
 *
 * Semi-private (tier 2): lib/ only.
 */
#ifndef EE_CORE_HTAB_H
#define EE_CORE_HTAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ee__hnode {
    struct ee__hnode *next; /* the same bucket */
    uint64_t hash;
    const char *key; /* the caller's: lives as long as the node is in a table */
} ee__hnode;

typedef struct ee__htab {
    ee__hnode **b;
    size_t cap; /* a power of two, 0 before the first insert */
    size_t n;
} ee__htab;

#define EE__HTAB_INIT {NULL, 0, 0}

/* The node whose key is `key`, or NULL. */
ee__hnode *ee__htab_find(const ee__htab *t, const char *key);

/* Adds `node` (its `key` set by the caller; one with an equal key may be
 * there already: find first). Grows the bucket array as entries come; a
 * failed growth keeps the old one (longer chains, same answers). Returns
 * false only when there is no bucket array at all (out of memory): the node
 * is not in the table. */
bool ee__htab_insert(ee__htab *t, ee__hnode *node);

/* Takes the node whose key is `key` out and returns it, or NULL. */
ee__hnode *ee__htab_remove(ee__htab *t, const char *key);

/* Calls `fn` for each node (which must not add or remove any). */
void ee__htab_each(const ee__htab *t, void (*fn)(ee__hnode *node, void *arg), void *arg);

/* Empties the table, handing each node to `fn` (which may free it; NULL:
 * none), and frees the bucket array. The table is then as EE__HTAB_INIT. */
void ee__htab_clear(ee__htab *t, void (*fn)(ee__hnode *node));

static inline void *ee__htab_entry_(ee__hnode *n, size_t offset)
{
    return n != NULL ? (void *)((char *)n - offset) : NULL;
}

/* The struct of type `type` whose member `member` is the node `n` (NULL
 * for NULL; `n` is evaluated once). */
#define EE__HTAB_ENTRY(n, type, member) ((type *)ee__htab_entry_((n), offsetof(type, member)))

#endif
