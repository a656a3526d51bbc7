/* The record layer: how a module's stored documents go between the JSON
 * it works with and the BSON the storage holds, the bounded parse of the
 * request text it is handed, and the one read-modify-write loop with its
 * one retry policy.
 *
 * Core: uses jansson and libbson, never another module's header. The
 * part that reads and writes a storage (ee__record_update, _find, _upsert)
 * is the storage module's: lib/storage/storage.h.
 *
 * Field maps. A collection describes the fields whose BSON type is not the
 * plain one of their JSON value: dates (BSON UTC datetime, JSON integer ms
 * since the epoch), ids (BSON ObjectId, JSON 24 lowercase hex), bounded
 * strings, int64 and money (int64 nano-USD), doubles, booleans, nested
 * documents with their own map, arrays of one kind, and opaque JSON.
 * A field that is not in the map, and an OPAQUE one, takes the plain
 * mapping: string -> UTF-8, integer -> int64, real -> double, true/false
 * -> bool, null -> null, object -> document, array -> array (and back,
 * int32 and int64 -> integer, datetime -> integer, ObjectId -> hex).
 *
 * Errors name the JSON pointer of the field: EE_EINVAL when a JSON value
 * does not fit its field ("/trigger/runnable: must be true or false"),
 * EE_ETOOBIG past the bounds, EE_ECORRUPT when stored BSON does not decode
 * ("stored plans record: /limits/0 has an unexpected BSON type"). No
 * message quotes a value: a record may hold a secret.
 */
#ifndef EE_CORE_RECORD_H
#define EE_CORE_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <bson/bson.h>
#include <jansson.h>

#include "execengine/errors.h"

/* Nesting a record may have, in both directions. */
#define EE__RECORD_DEPTH_MAX 32
/* Length of an ID field's text: a 12-byte ObjectId in lowercase hex (the
 * storage's EE_STORAGE_ID_HEX_LEN). */
#define EE__RECORD_ID_HEX_LEN 24

typedef enum ee__rec_kind {
    EE__REC_OPAQUE = 0, /* any JSON value, the plain mapping */
    EE__REC_STRING,     /* UTF-8, at most max_bytes (0: no limit) */
    EE__REC_ID,         /* ObjectId <-> 24 lowercase hex characters */
    EE__REC_INT64,      /* int64 (int32 accepted when read) */
    EE__REC_MONEY,      /* int64 nano-USD, 0 .. INT64_MAX */
    EE__REC_DOUBLE,     /* double (an integer accepted when written) */
    EE__REC_BOOL,
    EE__REC_DATE,       /* BSON UTC datetime <-> integer ms since the epoch */
    EE__REC_DOC,        /* a nested document, described by `map` (NULL: plain) */
    EE__REC_ARRAY,      /* an array whose elements are `elem` */
} ee__rec_kind;

/* Field flags. */
#define EE__REC_REQUIRED 0x1u  /* must be present (writing and reading) */
#define EE__REC_NULLABLE 0x2u  /* JSON null is stored as BSON null */
#define EE__REC_LENIENT 0x4u   /* a value of another JSON type takes the plain mapping
                                * (kept for collections that stored it so) */
#define EE__REC_SECRET 0x8u    /* never decoded into JSON (skipped when read) */

typedef struct ee__record_map ee__record_map;

typedef struct ee__rec_field {
    const char *name;           /* member name; NULL for an array's element */
    ee__rec_kind kind;
    unsigned flags;
    size_t max_bytes;           /* EE__REC_STRING; for EE__REC_ARRAY its element limit */
    const ee__record_map *map;  /* EE__REC_DOC */
    const struct ee__rec_field *elem; /* EE__REC_ARRAY */
} ee__rec_field;

struct ee__record_map {
    const char *what;            /* "catalog entry", used in messages */
    const ee__rec_field *fields;
    size_t n_fields;
    /* The map also describes unmapped nested documents and arrays (a
     * collection whose dates and ids are recognised by name at any depth). */
    bool inherit;
};

/* ---- JSON <-> BSON ---------------------------------------------------- */

/* Append the members of the JSON object `rec` to `b` through `map` (NULL:
 * the plain mapping). Members named in `skip` (NULL-terminated, may be
 * NULL) are left out. */
ee_status ee__record_append(bson_t *b, const ee__record_map *map, const json_t *rec,
                            const char *const *skip);

/* Encode the JSON object `rec` through `map`: *data (malloc'ed, free())
 * holds *len bytes of BSON. */
ee_status ee__record_encode(const ee__record_map *map, const json_t *rec, uint8_t **data,
                            size_t *len);

/* Decode stored BSON through `map` into a JSON object (*out, new
 * reference). "_id" is left out unless `keep_id`. Binary values are
 * skipped (a module that stores one reads it itself). */
ee_status ee__record_decode(const ee__record_map *map, const uint8_t *data, size_t len,
                            bool keep_id, json_t **out);

/* ---- request text --------------------------------------------------------- */

/* The bounded parse of a request document (ee__json_parse() with `flags`),
 * which must be a JSON object: EE_EINVAL "<what>: must be a JSON object". */
ee_status ee__record_parse(const char *text, size_t max_bytes, size_t max_depth, size_t flags,
                           const char *what, json_t **out);

/* The name a map gives its records in messages ("record" if none). */
const char *ee__record_what(const ee__record_map *map);

/* ---- the retry policy --------------------------------------------------------- */

/* How many times a read-modify-write is attempted when other writers keep
 * changing the record, and the cap of the jittered wait between attempts
 * (attempt i > 0 first waits a random 0 .. min(2^i, cap) ms, so writers
 * that keep colliding spread out; 20 writers of one subscription, in 4
 * processes, all get through - tests/unit/quota/quota_race.h). The budgets
 * of the loops this replaced were 8 (catalog), 16 (credentials) and 32 with
 * this backoff (quota): the largest, so no caller gives up sooner. */
#define EE__RECORD_ATTEMPTS 32
#define EE__RECORD_BACKOFF_CAP_MS 64

/* One attempt (from 0) of a read-modify-write. Returns EE_OK (done),
 * EE_ECONFLICT or EE_EEXISTS (someone wrote in between: attempt again), or
 * any other status (stop with it). Setting *final (false on entry) stops
 * with the status returned, whatever it is. */
typedef ee_status (*ee__record_attempt_fn)(int attempt, bool *final, void *payload);

/* Run `fn` until it answers anything but EE_ECONFLICT/EE_EEXISTS (or sets
 * *final), at most EE__RECORD_ATTEMPTS times with the backoff between.
 * Exhausted: EE_ECONFLICT "<what> changed concurrently N times: try again".
 * Used directly for records that are not a JSON object alone (the
 * credentials' sealed field); ee__record_update/upsert are built on it. */
ee_status ee__record_retry(ee__record_attempt_fn fn, void *payload, const char *what);

#endif
