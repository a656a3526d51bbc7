/* The record layer: field maps both ways, errors naming the JSON pointer,
 * bounds, the bounded request parse, and the one update-with-retry helper
 * (no lost update under racing threads on memory and SQLite storage, the
 * budget when the record never stops changing). */
#include <bson/bson.h>
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"
#include "core/record.h"
#include "storage/storage.h"
#include "execengine/storage.h"

/* ---- a map with every kind ------------------------------------------------------ */

static const ee__rec_field date_elem = {.kind = EE__REC_DATE};
static const ee__rec_field string_elem = {.kind = EE__REC_STRING, .max_bytes = 4};

static const ee__rec_field inner_fields[] = {
    {.name = "label", .kind = EE__REC_STRING, .flags = EE__REC_REQUIRED, .max_bytes = 8},
    {.name = "at", .kind = EE__REC_DATE},
};
static const ee__record_map inner_map = {"inner", inner_fields, 2, false};

static const ee__rec_field all_fields[] = {
    {.name = "name", .kind = EE__REC_STRING, .flags = EE__REC_REQUIRED, .max_bytes = 16},
    {.name = "ref", .kind = EE__REC_ID, .flags = EE__REC_NULLABLE},
    {.name = "count", .kind = EE__REC_INT64},
    {.name = "price", .kind = EE__REC_MONEY},
    {.name = "ratio", .kind = EE__REC_DOUBLE},
    {.name = "on", .kind = EE__REC_BOOL},
    {.name = "createdAt", .kind = EE__REC_DATE},
    {.name = "inner", .kind = EE__REC_DOC, .map = &inner_map},
    {.name = "dates", .kind = EE__REC_ARRAY, .elem = &date_elem},
    {.name = "tags", .kind = EE__REC_ARRAY, .max_bytes = 3, .elem = &string_elem},
    {.name = "free", .kind = EE__REC_OPAQUE},
    {.name = "a/b~c", .kind = EE__REC_BOOL},
    {.name = "hidden", .kind = EE__REC_STRING, .flags = EE__REC_SECRET},
};
static const ee__record_map all_map = {"test record", all_fields,
                                       sizeof all_fields / sizeof all_fields[0], false};

static const char *const FULL =
    "{\"name\": \"n\", \"ref\": \"0123456789abcdef01234567\", \"count\": -5, "
    "\"price\": 1500000000, \"ratio\": 0.25, \"on\": true, \"createdAt\": 1700000000123, "
    "\"inner\": {\"label\": \"x\", \"at\": 42, \"extra\": [1, \"two\", null]}, "
    "\"dates\": [1, 2], \"tags\": [\"a\", \"b\"], "
    "\"free\": {\"deep\": {\"n\": 1.5, \"s\": \"t\", \"b\": false, \"z\": null}}, "
    "\"unmapped\": 7}";

static json_t *load(const char *text)
{
    json_error_t err;
    json_t *j = json_loads(text, 0, &err);
    cr_assert_not_null(j, "%s", err.text);
    return j;
}

static bson_type_t type_at(const uint8_t *data, size_t len, const char *dotted)
{
    bson_t b;
    bson_iter_t it, found;
    cr_assert(bson_init_static(&b, data, len));
    cr_assert(bson_iter_init(&it, &b));
    if (!bson_iter_find_descendant(&it, dotted, &found))
        return BSON_TYPE_EOD;
    return bson_iter_type(&found);
}

Test(record, every_kind_has_its_bson_type_and_comes_back_equal)
{
    json_t *in = load(FULL);
    uint8_t *data = NULL;
    size_t len = 0;
    cr_assert_eq(ee__record_encode(&all_map, in, &data, &len), EE_OK, "%s",
                 ee_error_last_message());
    cr_expect_eq(type_at(data, len, "name"), BSON_TYPE_UTF8);
    cr_expect_eq(type_at(data, len, "ref"), BSON_TYPE_OID);
    cr_expect_eq(type_at(data, len, "count"), BSON_TYPE_INT64);
    cr_expect_eq(type_at(data, len, "price"), BSON_TYPE_INT64);
    cr_expect_eq(type_at(data, len, "ratio"), BSON_TYPE_DOUBLE);
    cr_expect_eq(type_at(data, len, "on"), BSON_TYPE_BOOL);
    cr_expect_eq(type_at(data, len, "createdAt"), BSON_TYPE_DATE_TIME);
    cr_expect_eq(type_at(data, len, "inner"), BSON_TYPE_DOCUMENT);
    cr_expect_eq(type_at(data, len, "inner.at"), BSON_TYPE_DATE_TIME);
    cr_expect_eq(type_at(data, len, "inner.extra.0"), BSON_TYPE_INT64);
    cr_expect_eq(type_at(data, len, "dates"), BSON_TYPE_ARRAY);
    cr_expect_eq(type_at(data, len, "dates.1"), BSON_TYPE_DATE_TIME);
    cr_expect_eq(type_at(data, len, "tags.0"), BSON_TYPE_UTF8);
    cr_expect_eq(type_at(data, len, "free.deep.n"), BSON_TYPE_DOUBLE);
    cr_expect_eq(type_at(data, len, "free.deep.z"), BSON_TYPE_NULL);
    cr_expect_eq(type_at(data, len, "unmapped"), BSON_TYPE_INT64);
    json_t *out = NULL;
    cr_assert_eq(ee__record_decode(&all_map, data, len, false, &out), EE_OK, "%s",
                 ee_error_last_message());
    char *a = json_dumps(in, JSON_SORT_KEYS), *b = json_dumps(out, JSON_SORT_KEYS);
    cr_expect(json_equal(in, out), "in %s\nout %s", a, b);
    free(a);
    free(b);
    json_decref(out);
    json_decref(in);
    free(data);
}

Test(record, null_where_the_field_allows_it_and_int32_read_as_int64)
{
    bson_t *b = BCON_NEW("name", BCON_UTF8("n"), "ref", BCON_NULL, "count", BCON_INT32(7),
                         "ratio", BCON_INT32(2), "_id", BCON_UTF8("dropped"));
    json_t *out = NULL;
    cr_assert_eq(ee__record_decode(&all_map, bson_get_data(b), b->len, false, &out), EE_OK,
                 "%s", ee_error_last_message());
    cr_expect(json_is_null(json_object_get(out, "ref")));
    cr_expect_eq(json_integer_value(json_object_get(out, "count")), 7);
    cr_expect_null(json_object_get(out, "_id"));
    json_decref(out);
    cr_assert_eq(ee__record_decode(&all_map, bson_get_data(b), b->len, true, &out), EE_OK);
    cr_expect_str_eq(json_string_value(json_object_get(out, "_id")), "dropped");
    json_decref(out);
    bson_destroy(b);
}

Test(record, a_secret_field_is_never_decoded_and_binaries_are_skipped)
{
    static const uint8_t bin[3] = {1, 2, 3};
    bson_t *b = BCON_NEW("name", BCON_UTF8("n"), "hidden", BCON_UTF8("canary-secret-4711"),
                         "blob", BCON_BIN(BSON_SUBTYPE_BINARY, bin, 3));
    json_t *out = NULL;
    cr_assert_eq(ee__record_decode(&all_map, bson_get_data(b), b->len, false, &out), EE_OK);
    char *text = json_dumps(out, 0);
    cr_expect_null(strstr(text, "canary-secret-4711"), "%s", text);
    cr_expect_null(json_object_get(out, "blob"));
    cr_expect_str_eq(json_string_value(json_object_get(out, "name")), "n");
    free(text);
    json_decref(out);
    bson_destroy(b);
}

/* Encoding `text` fails with `status` and a message holding `needle`. */
static void encode_fails(const char *text, ee_status status, const char *needle)
{
    json_t *in = load(text);
    uint8_t *data = (uint8_t *)"x";
    size_t len = 1;
    cr_expect_eq(ee__record_encode(&all_map, in, &data, &len), status, "%s: %s", text,
                 ee_error_last_message());
    cr_expect_null(data);
    cr_expect_not_null(strstr(ee_error_last_message(), needle), "%s: message \"%s\" lacks %s",
                       text, ee_error_last_message(), needle);
    json_decref(in);
}

Test(record, encode_errors_name_the_json_pointer)
{
    encode_fails("{\"count\": 1}", EE_EINVAL, "/name is required");
    encode_fails("{\"name\": 5}", EE_EINVAL, "/name must be a string");
    encode_fails("{\"name\": \"01234567890123456\"}", EE_ETOOBIG, "/name is longer than 16");
    encode_fails("{\"name\": \"n\", \"ref\": \"0123456789ABCDEF01234567\"}", EE_EINVAL,
                 "/ref must be an id");
    encode_fails("{\"name\": \"n\", \"count\": 1.5}", EE_EINVAL, "/count must be an integer");
    encode_fails("{\"name\": \"n\", \"price\": -1}", EE_EINVAL, "/price must be a non-negative");
    encode_fails("{\"name\": \"n\", \"ratio\": \"1\"}", EE_EINVAL, "/ratio must be a number");
    encode_fails("{\"name\": \"n\", \"on\": 1}", EE_EINVAL, "/on must be true or false");
    encode_fails("{\"name\": \"n\", \"createdAt\": \"2024\"}", EE_EINVAL, "/createdAt must be");
    encode_fails("{\"name\": \"n\", \"inner\": {\"at\": 1}}", EE_EINVAL,
                 "/inner/label is required");
    encode_fails("{\"name\": \"n\", \"inner\": {\"label\": \"x\", \"at\": true}}", EE_EINVAL,
                 "/inner/at must be");
    encode_fails("{\"name\": \"n\", \"dates\": [1, \"x\"]}", EE_EINVAL, "/dates/1 must be");
    encode_fails("{\"name\": \"n\", \"tags\": [\"a\", \"b\", \"c\", \"d\"]}", EE_ETOOBIG,
                 "/tags has more than 3");
    encode_fails("{\"name\": \"n\", \"tags\": [\"a\", \"toolong\"]}", EE_ETOOBIG, "/tags/1 is");
    encode_fails("{\"name\": \"n\", \"a/b~c\": 0}", EE_EINVAL, "/a~1b~0c must be");
    encode_fails("{\"name\": \"n\", \"ref\": 3}", EE_EINVAL, "test record: /ref");
}

Test(record, a_message_never_quotes_the_value)
{
    encode_fails("{\"name\": \"canary-secret-4711-longer-than-16\"}", EE_ETOOBIG, "/name");
    cr_expect_null(strstr(ee_error_last_message(), "canary"), "%s", ee_error_last_message());
}

Test(record, nesting_is_bounded_both_ways)
{
    char text[4 * EE__RECORD_DEPTH_MAX + 64];
    size_t n = 0;
    n += (size_t)sprintf(text + n, "{\"name\": \"n\", \"free\": ");
    for (int i = 0; i <= EE__RECORD_DEPTH_MAX + 1; i++)
        n += (size_t)sprintf(text + n, "[");
    for (int i = 0; i <= EE__RECORD_DEPTH_MAX + 1; i++)
        n += (size_t)sprintf(text + n, "]");
    sprintf(text + n, "}");
    encode_fails(text, EE_ETOOBIG, "nested too deeply");

    bson_t *levels[EE__RECORD_DEPTH_MAX + 3];
    levels[0] = BCON_NEW("v", BCON_INT32(1));
    for (int i = 1; i < EE__RECORD_DEPTH_MAX + 3; i++) {
        levels[i] = bson_new();
        BSON_APPEND_DOCUMENT(levels[i], "d", levels[i - 1]);
    }
    bson_t *top = levels[EE__RECORD_DEPTH_MAX + 2];
    json_t *out = NULL;
    cr_expect_eq(ee__record_decode(NULL, bson_get_data(top), top->len, false, &out), EE_ECORRUPT);
    cr_expect_not_null(strstr(ee_error_last_message(), "nested too deeply"));
    cr_expect_null(out);
    for (int i = 0; i < EE__RECORD_DEPTH_MAX + 3; i++)
        bson_destroy(levels[i]);
}

Test(record, decode_errors_name_the_json_pointer)
{
    bson_t *b = BCON_NEW("name", BCON_UTF8("n"), "inner", "{", "label", BCON_UTF8("x"), "at",
                         BCON_UTF8("not a date"), "}");
    json_t *out = NULL;
    cr_expect_eq(ee__record_decode(&all_map, bson_get_data(b), b->len, false, &out), EE_ECORRUPT);
    cr_expect_not_null(strstr(ee_error_last_message(), "stored test record: /inner/at"), "%s",
                       ee_error_last_message());
    cr_expect_null(out);
    bson_destroy(b);

    b = BCON_NEW("count", BCON_INT64(1));
    cr_expect_eq(ee__record_decode(&all_map, bson_get_data(b), b->len, false, &out), EE_ECORRUPT);
    cr_expect_not_null(strstr(ee_error_last_message(), "/name is missing"), "%s",
                       ee_error_last_message());
    bson_destroy(b);

    b = BCON_NEW("name", BCON_UTF8("n"), "odd", "[", BCON_INT32(1), BCON_REGEX("a", "i"), "]");
    cr_expect_eq(ee__record_decode(&all_map, bson_get_data(b), b->len, false, &out), EE_ECORRUPT);
    cr_expect_not_null(strstr(ee_error_last_message(), "/odd/1 has an unexpected BSON type"),
                       "%s", ee_error_last_message());
    bson_destroy(b);

    b = bson_new();
    BSON_APPEND_UTF8(b, "name", "n");
    bson_append_utf8(b, "bad", -1, "\xff\xfe", 2);
    cr_expect_eq(ee__record_decode(&all_map, bson_get_data(b), b->len, false, &out), EE_ECORRUPT);
    cr_expect_not_null(strstr(ee_error_last_message(), "/bad is not valid UTF-8"), "%s",
                       ee_error_last_message());
    bson_destroy(b);

    static const uint8_t junk[] = {12, 0, 0, 0, 0x10, 'a', 0, 1, 0, 0, 0, 7};
    cr_expect_eq(ee__record_decode(&all_map, junk, sizeof junk, false, &out), EE_ECORRUPT);
    cr_expect_not_null(strstr(ee_error_last_message(), "not valid BSON"));
}

/* Corrupt BSON is refused by the walk that decodes it (no separate
 * validation pass): an element that runs past its document, a nested
 * document whose length lies, a name that is not UTF-8, an unknown type. */
Test(record, corrupt_bson_is_refused_element_by_element)
{
    static const uint8_t string_too_long[] = {
        /* {"name": "n", "s": a string of length 100 in a 28-byte document} */
        28, 0, 0, 0, 0x02, 'n', 'a', 'm', 'e', 0, 2, 0, 0, 0, 'n', 0,
        0x02, 's', 0, 100, 0, 0, 0, 'a', 'b', 'c', 0, 0};
    static const uint8_t inner_lies[] = {
        /* {"name": "n", "inner": {length 200}} */
        30, 0, 0, 0, 0x02, 'n', 'a', 'm', 'e', 0, 2, 0, 0, 0, 'n', 0,
        0x03, 'i', 'n', 'n', 'e', 'r', 0, 200, 0, 0, 0, 0, 0, 0};
    static const uint8_t bad_name[] = {
        /* {"name": "n", "\xff": int32 1} */
        24, 0, 0, 0, 0x02, 'n', 'a', 'm', 'e', 0, 2, 0, 0, 0, 'n', 0,
        0x10, 0xff, 0, 1, 0, 0, 0, 0};
    static const uint8_t unknown_type[] = {
        /* {"name": "n", "x": type 0x42} */
        22, 0, 0, 0, 0x02, 'n', 'a', 'm', 'e', 0, 2, 0, 0, 0, 'n', 0,
        0x42, 'x', 0, 1, 0, 0};
    const struct {
        const uint8_t *data;
        size_t len;
        const char *why;
    } cases[] = {{string_too_long, sizeof string_too_long, "is not valid BSON"},
                 {inner_lies, sizeof inner_lies, "is not valid BSON"},
                 {bad_name, sizeof bad_name, "has a name that is not valid UTF-8"},
                 {unknown_type, sizeof unknown_type, "is not valid BSON"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *out = NULL;
        cr_expect_eq(ee__record_decode(&all_map, cases[i].data, cases[i].len, false, &out),
                     EE_ECORRUPT, "case %zu: %s", i, ee_error_last_message());
        cr_expect_null(out, "case %zu", i);
        cr_expect_not_null(strstr(ee_error_last_message(), "stored test record"), "case %zu: %s",
                           i, ee_error_last_message());
        cr_expect_not_null(strstr(ee_error_last_message(), cases[i].why), "case %zu: %s", i,
                           ee_error_last_message());
    }
    /* every single-byte change of a valid record decodes or is refused,
     * never read out of bounds (the sanitizer build watches) */
    bson_t *b = BCON_NEW("name", BCON_UTF8("n"), "count", BCON_INT64(3), "inner", "{", "label",
                         BCON_UTF8("x"), "}", "list", "[", BCON_UTF8("a"), BCON_UTF8("b"), "]");
    uint8_t *copy = malloc(b->len);
    cr_assert_not_null(copy);
    size_t refused = 0;
    for (size_t at = 0; at < b->len; at++) {
        for (unsigned v = 0; v < 256; v += 17) {
            memcpy(copy, bson_get_data(b), b->len);
            copy[at] = (uint8_t)v;
            json_t *out = NULL;
            ee_status st = ee__record_decode(&all_map, copy, b->len, false, &out);
            cr_expect(st == EE_OK || st == EE_ECORRUPT, "byte %zu = %u: %s", at, v,
                      ee_status_name(st));
            cr_expect_eq(out != NULL, st == EE_OK);
            refused += st == EE_ECORRUPT;
            json_decref(out);
        }
    }
    cr_expect_gt(refused, 0);
    free(copy);
    bson_destroy(b);
}

/* A map that recognises dates and ids by name at any depth and stores any
 * other value plainly (the catalog's layout). */
static const ee__rec_field legacy_fields[] = {
    {.name = "updatedAt", .kind = EE__REC_DATE, .flags = EE__REC_LENIENT},
    {.name = "category", .kind = EE__REC_ID, .flags = EE__REC_LENIENT},
};
static const ee__record_map legacy_map = {"legacy", legacy_fields, 2, true};

Test(record, an_inherited_lenient_map_applies_at_any_depth_and_falls_back_to_plain)
{
    json_t *in = load("{\"updatedAt\": 5, \"category\": \"0123456789abcdef01234567\", "
                      "\"n8n\": {\"updatedAt\": 6, \"list\": [{\"updatedAt\": 7}]}, "
                      "\"other\": {\"updatedAt\": \"2024-01-01\", \"category\": \"misc\"}}");
    uint8_t *data = NULL;
    size_t len = 0;
    cr_assert_eq(ee__record_encode(&legacy_map, in, &data, &len), EE_OK, "%s",
                 ee_error_last_message());
    cr_expect_eq(type_at(data, len, "updatedAt"), BSON_TYPE_DATE_TIME);
    cr_expect_eq(type_at(data, len, "category"), BSON_TYPE_OID);
    cr_expect_eq(type_at(data, len, "n8n.updatedAt"), BSON_TYPE_DATE_TIME);
    cr_expect_eq(type_at(data, len, "n8n.list.0.updatedAt"), BSON_TYPE_DATE_TIME);
    cr_expect_eq(type_at(data, len, "other.updatedAt"), BSON_TYPE_UTF8);
    cr_expect_eq(type_at(data, len, "other.category"), BSON_TYPE_UTF8);
    json_t *out = NULL;
    cr_assert_eq(ee__record_decode(&legacy_map, data, len, false, &out), EE_OK);
    cr_expect(json_equal(in, out));
    json_decref(out);
    json_decref(in);
    free(data);
}

Test(record, the_request_parse_is_bounded_and_wants_an_object)
{
    json_t *out = NULL;
    cr_expect_eq(ee__record_parse("[1]", 100, 4, 0, "test request", &out), EE_EINVAL);
    cr_expect_str_eq(ee_error_last_message(), "test request: must be a JSON object");
    cr_expect_null(out);
    cr_expect_eq(ee__record_parse("{\"a\": \"0123456789\"}", 8, 4, 0, "test request", &out),
                 EE_ETOOBIG);
    cr_expect_eq(ee__record_parse("{\"a\": [[[[1]]]]}", 100, 3, 0, "test request", &out),
                 EE_ETOOBIG);
    cr_expect_eq(ee__record_parse("{\"a\": ", 100, 3, 0, "test request", &out), EE_EPARSE);
    cr_assert_eq(ee__record_parse("{\"a\": 1}", 100, 3, 0, "test request", &out), EE_OK);
    cr_expect_eq(json_integer_value(json_object_get(out, "a")), 1);
    json_decref(out);
}

/* ---- update with retry ------------------------------------------------------------ */

static const ee__rec_field counter_fields[] = {
    {.name = "name", .kind = EE__REC_STRING, .flags = EE__REC_REQUIRED},
    {.name = "n", .kind = EE__REC_INT64, .flags = EE__REC_REQUIRED},
    {.name = "createdAt", .kind = EE__REC_DATE},
    {.name = "updatedAt", .kind = EE__REC_DATE},
};
static const ee__record_map counter_map = {"counter", counter_fields, 4, false};

#define COLL "workflowCategories"

static void insert_counter(ee_storage *s, char id[25])
{
    json_t *rec = load("{\"name\": \"c\", \"n\": 0, \"createdAt\": 1, \"updatedAt\": 1}");
    uint8_t *data = NULL;
    size_t len = 0;
    cr_assert_eq(ee__record_encode(&counter_map, rec, &data, &len), EE_OK);
    cr_assert_eq(ee_storage_insert(s, COLL, NULL, data, len, id), EE_OK, "%s",
                 ee_error_last_message());
    free(data);
    json_decref(rec);
}

static ee_status increment(json_t *rec, void *payload)
{
    if (payload != NULL)
        atomic_fetch_add((atomic_int *)payload, 1);
    json_int_t n = json_integer_value(json_object_get(rec, "n"));
    /* widen the window between read and write so the threads collide */
    usleep(50);
    return json_object_set_new(rec, "n", json_integer(n + 1)) == 0 ? EE_OK : EE_ENOMEM;
}

typedef struct racer {
    ee_storage *s;
    const char *id;
    pthread_barrier_t *start;
    atomic_int failures;
} racer;

#define RACERS 6
#define ROUNDS 15

static void *race(void *arg)
{
    racer *r = arg;
    pthread_barrier_wait(r->start);
    for (int i = 0; i < ROUNDS; i++) {
        ee__record_update_spec spec = {.storage = r->s, .map = &counter_map, .collection = COLL,
                                       .id = r->id, .mutate = increment};
        if (ee__record_update(&spec, NULL, NULL) != EE_OK)
            atomic_fetch_add(&r->failures, 1);
    }
    return NULL;
}

static void no_lost_update(ee_storage *s)
{
    char id[25];
    insert_counter(s, id);
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, RACERS);
    racer r = {s, id, &start, 0};
    pthread_t t[RACERS];
    for (int i = 0; i < RACERS; i++)
        pthread_create(&t[i], NULL, race, &r);
    for (int i = 0; i < RACERS; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&start);
    cr_expect_eq(atomic_load(&r.failures), 0, "%d updates failed", atomic_load(&r.failures));
    uint8_t *data = NULL;
    size_t len = 0;
    int64_t rev = 0;
    cr_assert_eq(ee_storage_get(s, COLL, NULL, id, &data, &len, &rev), EE_OK);
    json_t *rec = NULL;
    cr_assert_eq(ee__record_decode(&counter_map, data, len, false, &rec), EE_OK);
    long long n = (long long)json_integer_value(json_object_get(rec, "n"));
    cr_expect_eq(n, RACERS * ROUNDS, "lost updates: n = %lld", n);
    cr_expect_eq(rev, 1 + RACERS * ROUNDS);
    json_decref(rec);
    ee_free(data);
}

Test(record, racing_updates_lose_nothing_in_memory)
{
    ee_storage *s = NULL;
    cr_assert_eq(ee_storage_memory_new(&s), EE_OK);
    no_lost_update(s);
    ee_storage_free(s);
}

Test(record, racing_updates_lose_nothing_in_sqlite)
{
    char dir[] = "/tmp/ee-record-XXXXXX", path[64];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/db.sqlite", dir);
    ee_storage *s = NULL;
    cr_assert_eq(ee_storage_sqlite_new(&s, path), EE_OK, "%s", ee_error_last_message());
    no_lost_update(s);
    ee_storage_free(s);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_expect_eq(system(cmd), 0);
}

/* A mutation during which another writer always gets in first. */
typedef struct meddler {
    ee_storage *s;
    const char *id;
    int calls;
} meddler;

static ee_status meddle(json_t *rec, void *payload)
{
    meddler *m = payload;
    m->calls++;
    uint8_t *data = NULL, *stored = NULL;
    size_t len = 0, stored_len = 0;
    int64_t revision = 0;
    cr_assert_eq(ee_storage_get(m->s, COLL, NULL, m->id, &stored, &stored_len, &revision), EE_OK);
    ee_free(stored);
    cr_assert_eq(ee__record_encode(&counter_map, rec, &data, &len), EE_OK);
    cr_assert_eq(ee_storage_replace(m->s, COLL, NULL, m->id, revision, data, len, NULL), EE_OK);
    free(data);
    return EE_OK;
}

Test(record, a_record_that_never_stops_changing_exhausts_the_budget)
{
    ee_storage *s = NULL;
    cr_assert_eq(ee_storage_memory_new(&s), EE_OK);
    char id[25];
    insert_counter(s, id);
    meddler m = {s, id, 0};
    ee__record_update_spec spec = {.storage = s, .map = &counter_map, .collection = COLL,
                                   .id = id, .mutate = meddle, .payload = &m};
    json_t *rec = (json_t *)1;
    cr_expect_eq(ee__record_update(&spec, &rec, NULL), EE_ECONFLICT);
    cr_expect_null(rec);
    cr_expect_eq(m.calls, EE__RECORD_ATTEMPTS);
    char want[64];
    snprintf(want, sizeof want, "changed concurrently %d times", EE__RECORD_ATTEMPTS);
    cr_expect_not_null(strstr(ee_error_last_message(), want), "%s", ee_error_last_message());
    ee_storage_free(s);
}

Test(record, an_expected_revision_is_checked_and_never_retried)
{
    ee_storage *s = NULL;
    cr_assert_eq(ee_storage_memory_new(&s), EE_OK);
    char id[25];
    insert_counter(s, id);
    atomic_int calls = 0;
    ee__record_update_spec spec = {.storage = s, .map = &counter_map, .collection = COLL,
                                   .id = id, .expected = 2, .mutate = increment,
                                   .payload = &calls};
    cr_expect_eq(ee__record_update(&spec, NULL, NULL), EE_ECONFLICT);
    cr_expect_eq(atomic_load(&calls), 0);
    cr_expect_not_null(strstr(ee_error_last_message(), "is at revision 1, not 2"));
    /* a writer between our read and write: stale, not retried */
    meddler m = {s, id, 0};
    spec.expected = 1;
    spec.mutate = meddle;
    spec.payload = &m;
    cr_expect_eq(ee__record_update(&spec, NULL, NULL), EE_ECONFLICT);
    cr_expect_eq(m.calls, 1);
    spec.expected = 2;
    spec.mutate = increment;
    spec.payload = &calls;
    json_t *rec = NULL;
    int64_t rev = 0;
    cr_expect_eq(ee__record_update(&spec, &rec, &rev), EE_OK, "%s", ee_error_last_message());
    cr_expect_eq(rev, 3);
    cr_expect_eq(json_integer_value(json_object_get(rec, "n")), 1);
    json_decref(rec);
    spec.id = "0123456789abcdef01234567";
    spec.expected = 0;
    cr_expect_eq(ee__record_update(&spec, NULL, NULL), EE_ENOTFOUND);
    ee_storage_free(s);
}

static ee_status keep(json_t *rec, void *payload)
{
    (void)rec;
    (void)payload;
    return EE__RECORD_KEEP;
}

Test(record, a_seed_is_used_first_and_keep_writes_nothing)
{
    ee_storage *s = NULL;
    cr_assert_eq(ee_storage_memory_new(&s), EE_OK);
    char id[25];
    insert_counter(s, id);
    json_t *seed = load("{\"name\": \"c\", \"n\": 41, \"createdAt\": 1}");
    ee__record_update_spec spec = {.storage = s, .map = &counter_map, .collection = COLL,
                                   .id = id, .seed = seed, .seed_revision = 1, .mutate = keep};
    json_t *rec = NULL;
    int64_t rev = 0;
    cr_expect_eq(ee__record_update(&spec, &rec, &rev), EE_OK);
    cr_expect_eq(rev, 1);
    cr_expect_eq(json_integer_value(json_object_get(rec, "n")), 41);
    json_decref(rec);
    /* a stale seed: the write conflicts, the retry reads the stored record */
    spec.mutate = increment;
    spec.seed_revision = 7;
    cr_expect_eq(ee__record_update(&spec, &rec, &rev), EE_OK, "%s", ee_error_last_message());
    cr_expect_eq(rev, 2);
    cr_expect_eq(json_integer_value(json_object_get(rec, "n")), 1);
    json_decref(rec);
    json_decref(seed);
    ee_storage_free(s);
}

/* ---- create or replace ------------------------------------------------------------ */

static ee_status set_n(json_t *rec, void *payload)
{
    json_object_set_new(rec, "name", json_string("plan-x"));
    json_object_set_new(rec, "createdAt", json_integer(1));
    json_object_set_new(rec, "n", json_integer(json_integer_value(json_object_get(rec, "n")) + 1));
    if (payload != NULL)
        usleep(50);
    return EE_OK;
}

typedef struct upserter {
    ee_storage *s;
    pthread_barrier_t *start;
    atomic_int failures;
} upserter;

static void *upsert_race(void *arg)
{
    upserter *u = arg;
    pthread_barrier_wait(u->start);
    for (int i = 0; i < ROUNDS; i++)
        if (ee__record_upsert(u->s, &counter_map, COLL, NULL, "name", "plan-x", NULL, set_n, u)
            != EE_OK)
            atomic_fetch_add(&u->failures, 1);
    return NULL;
}

static int count_row(const ee_storage_row *row, void *payload)
{
    (void)row;
    (*(int *)payload)++;
    return 0;
}

Test(record, upsert_creates_once_and_racing_writers_keep_one_record)
{
    ee_storage *s = NULL;
    cr_assert_eq(ee_storage_memory_new(&s), EE_OK);
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, RACERS);
    upserter u = {s, &start, 0};
    pthread_t t[RACERS];
    for (int i = 0; i < RACERS; i++)
        pthread_create(&t[i], NULL, upsert_race, &u);
    for (int i = 0; i < RACERS; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&start);
    cr_expect_eq(atomic_load(&u.failures), 0, "%d upserts failed: %s", atomic_load(&u.failures),
                 ee_error_last_message());
    ee_storage_query_spec q = {.version = EE_STORAGE_QUERY_VERSION,
                               .limit = EE_STORAGE_LIMIT_MAX};
    int rows = 0;
    cr_assert_eq(ee_storage_query(s, COLL, NULL, &q, count_row, &rows, NULL), EE_OK);
    cr_expect_eq(rows, 1);
    ee_storage_free(s);
}

static ee_status count_attempts(int attempt, bool *final, void *payload)
{
    int *n = payload;
    cr_expect_eq(attempt, *n);
    (*n)++;
    if (*n == 3) {
        *final = true;
        return EE_ECONFLICT; /* stopped with a conflict of its own */
    }
    return *n % 2 ? EE_EEXISTS : EE_ECONFLICT;
}

Test(record, retry_runs_again_on_conflict_and_stops_when_told)
{
    int n = 0;
    cr_expect_eq(ee__record_retry(count_attempts, &n, "thing"), EE_ECONFLICT);
    cr_expect_eq(n, 3);
}
