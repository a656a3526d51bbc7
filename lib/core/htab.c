/* An intrusive hash table with string keys (htab.h). */
#include "htab.h"

#include <stdlib.h>
#include <string.h>

/* FNV-1a, 64 bits: the keys are ids the host or the engine chose, hashed
 * once an operation. */
static uint64_t key_hash(const char *key)
{
    uint64_t h = 1469598103934665603ULL;
    for (const unsigned char *p = (const unsigned char *)key; *p != '\0'; p++)
        h = (h ^ *p) * 1099511628211ULL;
    return h;
}

static ee__hnode **slot_of(const ee__htab *t, const char *key, uint64_t h)
{
    ee__hnode **pp = &t->b[h & (t->cap - 1)];
    while (*pp != NULL && ((*pp)->hash != h || strcmp((*pp)->key, key) != 0))
        pp = &(*pp)->next;
    return pp;
}

ee__hnode *ee__htab_find(const ee__htab *t, const char *key)
{
    if (t->cap == 0)
        return NULL;
    return *slot_of(t, key, key_hash(key));
}

static void grow(ee__htab *t)
{
    size_t cap = t->cap == 0 ? 64 : t->cap * 2;
    ee__hnode **b = calloc(cap, sizeof *b);
    if (b == NULL)
        return;
    for (size_t i = 0; i < t->cap; i++) {
        ee__hnode *n = t->b[i];
        while (n != NULL) {
            ee__hnode *next = n->next;
            n->next = b[n->hash & (cap - 1)];
            b[n->hash & (cap - 1)] = n;
            n = next;
        }
    }
    free(t->b);
    t->b = b;
    t->cap = cap;
}

bool ee__htab_insert(ee__htab *t, ee__hnode *node)
{
    if (t->n + 1 > t->cap)
        grow(t);
    if (t->cap == 0)
        return false;
    node->hash = key_hash(node->key);
    ee__hnode **head = &t->b[node->hash & (t->cap - 1)];
    node->next = *head;
    *head = node;
    t->n++;
    return true;
}

ee__hnode *ee__htab_remove(ee__htab *t, const char *key)
{
    if (t->cap == 0)
        return NULL;
    ee__hnode **pp = slot_of(t, key, key_hash(key));
    ee__hnode *n = *pp;
    if (n != NULL) {
        *pp = n->next;
        n->next = NULL;
        t->n--;
    }
    return n;
}

void ee__htab_each(const ee__htab *t, void (*fn)(ee__hnode *node, void *arg), void *arg)
{
    for (size_t i = 0; i < t->cap; i++)
        for (ee__hnode *n = t->b[i]; n != NULL; n = n->next)
            fn(n, arg);
}

void ee__htab_clear(ee__htab *t, void (*fn)(ee__hnode *node))
{
    for (size_t i = 0; i < t->cap; i++) {
        ee__hnode *n = t->b[i];
        while (n != NULL) {
            ee__hnode *next = n->next;
            if (fn != NULL)
                fn(n);
            n = next;
        }
    }
    free(t->b);
    t->b = NULL;
    t->cap = t->n = 0;
}
