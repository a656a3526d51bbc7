/*
 * "format" assertion (lib/schema/schema_format.c): for each asserted
 * format, strings that are valid and invalid under the RFC it follows,
 * including the kinds of cases of the official suite's optional/format/
 * tests (which shared/conformance does not hold); unknown formats and
 * non-strings pass; assertion can be turned off by the schema's
 * $vocabulary, by a compile flag, and by the engine's SCHEMA_FORMAT_ASSERT.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema/schema.h"
#include "engine_fixture.h"
#include "execengine/catalog.h"

static ee_status check(const char *format, const char *value, unsigned flags)
{
    json_t *schema = json_pack("{s:s}", "format", format);
    ee_schema *s = NULL;
    cr_assert_eq(ee__schema_compile_flags(&s, schema, flags), EE_OK, "%s",
                 ee_error_last_message());
    json_t *inst = json_string(value);
    cr_assert_not_null(inst, "test value is not UTF-8: %s", value);
    ee_status st = ee__schema_validate(s, inst, NULL);
    json_decref(inst);
    json_decref(schema);
    ee_schema_free(s);
    return st;
}

typedef struct {
    const char *format, *value;
    bool valid;
} fcase;

static const fcase cases[] = {
    /* date: RFC 3339 full-date */
    {"date", "1963-06-19", true},
    {"date", "2020-01-31", true},
    {"date", "2020-01-32", false},
    {"date", "2021-02-28", true},
    {"date", "2021-02-29", false},
    {"date", "2020-02-29", true},
    {"date", "2000-02-29", true},
    {"date", "1900-02-29", false},
    {"date", "2020-04-31", false},
    {"date", "2020-13-01", false},
    {"date", "2020-00-01", false},
    {"date", "06/19/1963", false},
    {"date", "2013-350", false},
    {"date", "1998-1-20", false},
    {"date", "1998-01-1", false},
    {"date", "1963-06-1\xe0\xa7\xaa", false}, /* a Bengali 4 */
    {"date", "20230328", false},
    {"date", "2023-W01", false},
    {"date", "", false},
    /* time: RFC 3339 full-time (an offset is required) */
    {"time", "08:30:06Z", true},
    {"time", "08:30:06z", true},
    {"time", "08:30:06.283185Z", true},
    {"time", "08:30:06+00:20", true},
    {"time", "08:30:06-08:00", true},
    {"time", "23:59:60Z", true},
    {"time", "15:59:60-08:00", true},
    {"time", "23:59:60+00:00", true},
    {"time", "22:59:60Z", false},
    {"time", "23:58:60Z", false},
    {"time", "23:59:60+01:00", false},
    {"time", "08:30:06", false},
    {"time", "08:30:06 PST", false},
    {"time", "01:01:01,1111", false},
    {"time", "24:00:00Z", false},
    {"time", "00:60:00Z", false},
    {"time", "00:00:61Z", false},
    {"time", "01:02:03+24:00", false},
    {"time", "01:02:03+00:60", false},
    {"time", "12:00:00.Z", false},
    {"time", "8:30:06Z", false},
    {"time", "1\xd9\xa2:00:00Z", false}, /* an Arabic-Indic 2 */
    /* date-time */
    {"date-time", "1963-06-19T08:30:06.283185Z", true},
    {"date-time", "1963-06-19T08:30:06Z", true},
    {"date-time", "1937-01-01T12:00:27.87+00:20", true},
    {"date-time", "1990-12-31T15:59:50.123-08:00", true},
    {"date-time", "1998-12-31T23:59:60Z", true},
    {"date-time", "1998-12-31T15:59:60.123-08:00", true},
    {"date-time", "1963-06-19t08:30:06.283185z", true},
    {"date-time", "1998-12-31T23:58:60Z", false},
    {"date-time", "1990-02-31T15:59:59.123-08:00", false},
    {"date-time", "1990-12-31T15:59:59-24:00", false},
    {"date-time", "06/19/1963 08:30:06 PST", false},
    {"date-time", "2013-350T01:01:01", false},
    {"date-time", "1963-06-19 08:30:06Z", false},
    {"date-time", "1963-06-19T08:30:06", false},
    /* duration: RFC 3339 appendix A */
    {"duration", "P4DT12H30M5S", true},
    {"duration", "P1Y2M3DT4H5M6S", true},
    {"duration", "P4Y", true},
    {"duration", "PT0S", true},
    {"duration", "P0D", true},
    {"duration", "P1M", true},
    {"duration", "PT1M", true},
    {"duration", "PT36H", true},
    {"duration", "P1DT36H", true},
    {"duration", "P2W", true},
    {"duration", "P4\xe0\xa7\xaaY", false},
    {"duration", "PT1D", false},
    {"duration", "P", false},
    {"duration", "P1YT", false},
    {"duration", "PT", false},
    {"duration", "P2D1Y", false},
    {"duration", "P1D2H", false},
    {"duration", "P1Y2W", false},
    /* the ABNF wants the parts contiguous: no month left out between
     * years and days, no minutes between hours and seconds */
    {"duration", "P1Y2D", false},
    {"duration", "PT1H2S", false},
    {"duration", "P1Y2M", true},
    {"duration", "P1M2D", true},
    {"duration", "PT1H2M", true},
    {"duration", "PT1M2S", true},
    {"duration", "P1Y2M3D", true},
    {"duration", "P1WT1H", false},
    {"duration", "P0Y1W", false},
    {"duration", "P1D2T3H", false},
    {"duration", "P1", false},
    {"duration", "P2S", false},
    {"duration", "P1M1M", false},
    {"duration", "PT1S1H", false},
    {"duration", "1D", false},
    {"duration", "P1.5D", false},
    /* email: RFC 5321 Mailbox */
    {"email", "joe.bloggs@example.com", true},
    {"email", "te~st@example.com", true},
    {"email", "~test@example.com", true},
    {"email", "test~@example.com", true},
    {"email", "\"joe bloggs\"@example.com", true},
    {"email", "\"joe..bloggs\"@example.com", true},
    {"email", "joe.bloggs@[127.0.0.1]", true},
    {"email", "joe.bloggs@[IPv6:::1]", true},
    {"email", "te.s.t@example.com", true},
    {"email", "user+tag@sub.example.co.uk", true},
    {"email", "not-an-email", false},
    {"email", "2962", false},
    {"email", ".test@example.com", false},
    {"email", "test.@example.com", false},
    {"email", "te..st@example.com", false},
    {"email", "joe.bloggs@invalid=domain.com", false},
    {"email", "joe.bloggs@[127.0.0.300]", false},
    {"email", "a@b@example.com", false},
    {"email", "@example.com", false},
    {"email", "joe@", false},
    {"email", "joe@-example.com", false},
    {"email", "jo e@example.com", false},
    {"email", "\xec\x8b\xa4\xeb\xa1\x80@\xec\x8b\xa4\xeb\xa1\x80.\xed\x85\x8c\xec\x8a\xa4\xed\x8a\xb8", false},
    /* idn-email: RFC 6531 */
    {"idn-email", "\xec\x8b\xa4\xeb\xa1\x80@\xec\x8b\xa4\xeb\xa1\x80.\xed\x85\x8c\xec\x8a\xa4\xed\x8a\xb8", true},
    {"idn-email", "joe.bloggs@example.com", true},
    {"idn-email", "2962", false},
    {"idn-email", "te..st@example.com", false},
    /* NFC is a SHOULD for an e-mail address (RFC 6532 3.1): a domain or a
     * local part not in NFC is valid; an idn-hostname must be in NFC */
    {"idn-email", "user@cafe\xcc\x81.com", true},
    {"idn-email", "cafe\xcc\x81@example.com", true},
    {"idn-hostname", "cafe\xcc\x81.com", false},
    {"idn-email", "user@\xd7\x90" "0\xd9\xa0.com", false}, /* its domain breaks the Bidi rule */
    {"idn-email", "user\xef\xbc\xa0" "example.com", false},  /* a fullwidth @ is no separator */
    /* hostname: RFC 1123, A-labels checked */
    {"hostname", "www.example.com", true},
    {"hostname", "xn--4gbwdl.xn--wgbh1c", true},
    {"hostname", "hostname", true},
    {"hostname", "host-name", true},
    {"hostname", "h0stn4me", true},
    {"hostname", "1host", true},
    {"hostname", "hostnam3", true},
    {"hostname", "a", true},
    {"hostname", "-a-host-name-that-starts-with--", false},
    {"hostname", "not_a_valid_host_name", false},
    {"hostname", "a-vvvvvvvvvvvvvvvveeeeeeeeeeeeeeeerrrrrrrrrrrrrrrryyyyyyyyyyyyyyyy-long-host-name-component",
     false},
    {"hostname", "-hostname", false},
    {"hostname", "hostname-", false},
    {"hostname", "_hostname", false},
    {"hostname", "host_name", false},
    {"hostname", "", false},
    {"hostname", ".", false},
    {"hostname", "example..com", false},
    {"hostname", "XN--aa---o47jg78q", false}, /* "--" in 3-4 of a non-A-label */
    {"hostname", "xn--X", false},            /* bad punycode */
    {"hostname", "\xe5\xae\x9f\xe4\xbe\x8b.\xe6\xb5\x8b\xe8\xaf\x95", false}, /* U-labels */
    /* an A-label's U-label passes RFC 5892's CONTEXTO rules ... */
    {"hostname", "xn--ll-0ea", true},        /* l·l */
    {"hostname", "xn--al-0ea", false},       /* a·l: MIDDLE DOT not between two l */
    {"hostname", "xn--l-gda", false},        /* l· */
    {"hostname", "xn--wva3j", false},        /* α͵: KERAIA before nothing */
    {"hostname", "xn--wva3je", true},        /* α͵ε */
    {"hostname", "xn--5db1e", false},        /* ׳ב: GERESH after nothing */
    {"hostname", "xn--4dbc5h", true},        /* א׳ב */
    {"hostname", "xn--vek", false},          /* ・ alone */
    {"hostname", "xn--k8j5u", true},         /* ・ぁ */
    {"hostname", "xn--ngb6iyr", false},      /* Arabic-Indic with extended digits */
    {"hostname", "xn--ngba1o", true},
    /* ... and RFC 5893's Bidi rule */
    {"hostname", "xn--4gbwdl.xn--wgbh1c", true},
    {"hostname", "1.xn--4db", false},        /* a digit-first label in a Bidi name */
    {"hostname", "xn--0ca24w", false},
    /* the A-label is the canonical encoding of its U-label */
    {"hostname", "xn---9uc", false},
    {"hostname", "xn--example-", false},     /* decodes to ASCII only */
    /* idn-hostname: IDNA2008 */
    {"idn-hostname", "\xec\x8b\xa4\xeb\xa1\x80.\xed\x85\x8c\xec\x8a\xa4\xed\x8a\xb8", true},
    {"idn-hostname", "www.example.com", true},
    {"idn-hostname", "xn--ihqwcrb4cv8a8dqg056pqjye", true},
    {"idn-hostname", "\xec\x8b\xa4\xeb\xa1\x80\xe3\x80\x82\xed\x85\x8c\xec\x8a\xa4\xed\x8a\xb8", true},
    {"idn-hostname", "", false},
    {"idn-hostname", "-> $1.00 <--", false},
    {"idn-hostname", "\xe3\x80\xae\xed\x85\x8c\xec\x8a\xa4\xed\x8a\xb8", false}, /* starts with a mark */
    {"idn-hostname", "a\xc2\xb7l", false},   /* MIDDLE DOT not between two l */
    {"idn-hostname", "-hello", false},
    {"idn-hostname", "l\xc2\xb7l", true},
    {"idn-hostname", "\xce\xb1\xcd\xb5S", false},          /* KERAIA not before Greek */
    {"idn-hostname", "\xce\xb1\xcd\xb5\xce\xb2", true},
    {"idn-hostname", "A\xd7\xb3\xd7\x91", false},          /* GERESH not after Hebrew */
    {"idn-hostname", "\xd7\x90\xd7\xb3\xd7\x91", true},
    {"idn-hostname", "def\xe3\x83\xbb" "abc", false},          /* KATAKANA MIDDLE DOT alone */
    {"idn-hostname", "\xe3\x83\xbb\xe3\x81\x81", true},
    {"idn-hostname", "\xd8\xa8\xd9\xa0\xdb\xb0", false}, /* Arabic-Indic with extended */
    {"idn-hostname", "\xd8\xa8\xd9\xa0\xd9\xa1", true},
    /* RFC 5893's Bidi rule, over the whole name once one label is RTL */
    {"idn-hostname", "0a.\xd7\x90", false},          /* 0a.א: digit-first label */
    {"idn-hostname", "\xd7\x90.0a", false},
    {"idn-hostname", "\xd7\x90" "0\xd9\xa0", false},   /* א0٠: EN and AN in one label */
    {"idn-hostname", "\xd7\x90\xd9\xa1", true},      /* א١ */
    {"idn-hostname", "\xd7\x90" "1", true},           /* א1 */
    {"idn-hostname", "a\xd7\x90", false},             /* LTR label with an R */
    {"idn-hostname", "0\xd8\xa7", false},             /* 0ا */
    {"idn-hostname", "\xd7\x90\xd7\x91.com", true},  /* אב.com */
    {"idn-hostname", "0a.b", true},                   /* no RTL label: no Bidi rule */
    {"idn-hostname", "xn--0ca24w", false},
    /* ipv4 */
    {"ipv4", "192.168.0.1", true},
    {"ipv4", "0.0.0.0", true},
    {"ipv4", "255.255.255.255", true},
    {"ipv4", "127.0.0.0.1", false},
    {"ipv4", "256.256.256.256", false},
    {"ipv4", "127.0", false},
    {"ipv4", "0x7f000001", false},
    {"ipv4", "2130706433", false},
    {"ipv4", "087.10.0.1", false},
    {"ipv4", "1\xe0\xa7\xa8" "7.0.0.1", false},
    {"ipv4", "192.168.1.0/24", false},
    {"ipv4", " 1.2.3.4", false},
    /* ipv6 */
    {"ipv6", "::1", true},
    {"ipv6", "::", true},
    {"ipv6", "::abef", true},
    {"ipv6", "1::", true},
    {"ipv6", "1:2:3:4:5:6:7:8", true},
    {"ipv6", "1::d6:192.168.0.1", true},
    {"ipv6", "::ffff:192.168.0.1", true},
    {"ipv6", "1:2:3:4:5:6:1.2.3.4", true},
    {"ipv6", "FFFF:ffff:0:0:0:0:0:0", true},
    {"ipv6", "12345::", false},
    {"ipv6", "::abcef", false},
    {"ipv6", "1:1:1:1:1:1:1:1:1:1:1:1:1:1:1:1", false},
    {"ipv6", "::laptop", false},
    {"ipv6", ":2:3:4:5:6:7:8", false},
    {"ipv6", "1:2:3:4:5:6:7:", false},
    {"ipv6", "1::2::3", false},
    {"ipv6", "1:2:3:4:5:6:7:8:9", false},
    {"ipv6", "1:2:3:4:5:6:7", false},
    {"ipv6", "1::d6:192.168.0.256", false},
    {"ipv6", "1:2:3:4:5:6:7:1.2.3.4", false},
    {"ipv6", "fe80::a%eth1", false},
    {"ipv6", " ::1", false},
    {"ipv6", "1:2:3:4:5:6:7:\xe0\xa7\xaa", false},
    /* uri */
    {"uri", "http://foo.bar/?baz=qux#quux", true},
    {"uri", "http://foo.com/blah_(wikipedia)_blah#cite-1", true},
    {"uri", "http://foo.bar/?q=Test%20URL-encoded%20stuff", true},
    {"uri", "http://xn--nw2a.xn--j6w193g/", true},
    {"uri", "http://-.~_!$&'()*+,;=:%40:80%2f::::::@example.com", true},
    {"uri", "http://223.255.255.254", true},
    {"uri", "ftp://ftp.is.co.za/rfc/rfc1808.txt", true},
    {"uri", "http://www.ietf.org/rfc/rfc2396.txt", true},
    {"uri", "ldap://[2001:db8::7]/c=GB?objectClass?one", true},
    {"uri", "mailto:John.Doe@example.com", true},
    {"uri", "news:comp.infosystems.www.servers.unix", true},
    {"uri", "tel:+1-816-555-1212", true},
    {"uri", "urn:oasis:names:specification:docbook:dtd:xml:4.1.2", true},
    {"uri", "http://[v1.fe80::a+en1]/", true},
    {"uri", "//foo.bar/?baz=qux#quux", false},
    {"uri", "/abc", false},
    {"uri", "\\\\WINDOWS\\fileshare", false},
    {"uri", "abc", false},
    {"uri", "http:// shouldfail.com", false},
    {"uri", ":// should fail", false},
    {"uri", "bar,baz:foo", false},
    {"uri", "https://example.com/\"quoted\"", false},
    {"uri", "http://2001:0db8:85a3:0000:0000:8a2e:0370:7334", false},
    {"uri", "http://example.com/p%zz", false},
    {"uri", "http://example.com/%", false},
    {"uri", "http://\xc6\x92\xc3\xb8\xc3\xb8.\xc3\x9f\xc3\xa5r/", false},
    {"uri", "http://[::1", false},
    {"uri", "http://example.com:80a/", false},
    /* uri-reference */
    {"uri-reference", "http://foo.bar/?baz=qux#quux", true},
    {"uri-reference", "//foo.bar/?baz=qux#quux", true},
    {"uri-reference", "/abc", true},
    {"uri-reference", "abc", true},
    {"uri-reference", "#fragment", true},
    {"uri-reference", "", true},
    {"uri-reference", "\\\\WINDOWS\\fil\xc3\xab\xc3\x9f\xc3\xa5r\xc3\xa9", false},
    {"uri-reference", "#frag\\ment", false},
    {"uri-reference", "abc#f\\", false},
    {"uri-reference", "a:b:c/../d", true},
    {"uri-reference", "1a:b", false}, /* path-noscheme: no ':' in the first segment */
    /* iri */
    {"iri", "http://\xc6\x92\xc3\xb8\xc3\xb8.\xc3\x9f\xc3\xa5r/?\xe2\x88\x82\xc3\xa9\xc5\x93=\xcf\x80\xc3\xaex#\xcf\x80\xc3\xae\xc3\xbcx", true},
    {"iri", "http://\xc6\x92\xc3\xb8\xc3\xb8.com/blah_(w\xc3\xae" "k\xc3\xae" "p\xc3\xa9" "di\xc3\xa5)_blah#\xc3\x9f\xc3\xae" "te-1", true},
    {"iri", "http://[2001:0db8:85a3:0000:0000:8a2e:0370:7334]", true},
    {"iri", "http://2001:0db8:85a3:0000:0000:8a2e:0370:7334", false},
    {"iri", "/abc", false},
    {"iri", "\\\\WINDOWS\\fil\xc3\xab\xc3\x9f\xc3\xa5r\xc3\xa9", false},
    {"iri", "http:// example.com", false},
    /* uri-template: RFC 6570 */
    {"uri-template", "http://example.com/dictionary/{term:1}/{term}", true},
    {"uri-template", "dictionary/{term:1}/{term}", true},
    {"uri-template", "", true},
    {"uri-template", "{+var}{#var}{.var}{/var}{;var}{?var}{&var}", true},
    {"uri-template", "{var*}", true},
    {"uri-template", "{x,y:3,z*}", true},
    {"uri-template", "{a.b}", true},
    {"uri-template", "{%41}", true},
    {"uri-template", "{v:1000}", true},
    {"uri-template", "a%41b", true},
    {"uri-template", "a'b", true},
    {"uri-template", "a\xf0\x9f\x98\x80" "b", true},
    {"uri-template", "http://example.com/dictionary/{term:1}/{term", false},
    {"uri-template", "{}", false},
    {"uri-template", "{a,,b}", false},
    {"uri-template", "{a,}", false},
    {"uri-template", "{v:0}", false},
    {"uri-template", "{v:01}", false},
    {"uri-template", "{v:10000}", false},
    {"uri-template", "{a..b}", false},
    {"uri-template", "{a.}", false},
    {"uri-template", "{var=def}", false},
    {"uri-template", "{,+var}", false},
    {"uri-template", "{v*:3}", false},
    {"uri-template", "foo}bar", false},
    {"uri-template", "a b", false},
    {"uri-template", "a\x7f" "b", false},
    {"uri-template", "a<b", false},
    {"uri-template", "a%4", false},
    {"uri-template", "a\xc2\x85" "b", false},     /* a C1 control */
    {"uri-template", "a\xef\xbf\xbf" "b", false}, /* U+FFFF, a noncharacter */
    /* uuid */
    {"uuid", "2eb8aa08-aa98-11ea-b4aa-73b441d16380", true},
    {"uuid", "2EB8AA08-AA98-11EA-B4AA-73B441D16380", true},
    {"uuid", "2eb8aa08-AA98-11ea-B4Aa-73B441D16380", true},
    {"uuid", "00000000-0000-0000-0000-000000000000", true},
    {"uuid", "98d80576-482e-427f-8434-7f86890ab222", true},
    {"uuid", "99c17cbb-656f-564a-940f-1a4568f03487", true},
    {"uuid", "99c17cbb-656f-f64a-940f-1a4568f03487", true},
    {"uuid", "2eb8aa08-aa98-11ea-b4aa-73b441d1638", false},
    {"uuid", "2eb8aa08-aa98-11ea-73b441d16380", false},
    {"uuid", "2eb8aa08-aa98-11ea-b4ga-73b441d16380", false},
    {"uuid", "2eb8aa08aa9811eab4aa73b441d16380", false},
    {"uuid", "2eb8aa08aa98-11ea-b4aa-73b441d16380", false},
    {"uuid", "2eb8-aa08-aa98-11ea-b4aa73b441d16380", false},
    {"uuid", "2eb8aa08-aa98-11ea-b4aa-73b441d16380-0", false},
    {"uuid", "{2eb8aa08-aa98-11ea-b4aa-73b441d16380}", false},
    /* json-pointer: RFC 6901 */
    {"json-pointer", "/foo/bar~0/baz~1/%a", true},
    {"json-pointer", "/foo//bar", true},
    {"json-pointer", "/foo/bar/", true},
    {"json-pointer", "", true},
    {"json-pointer", "/", true},
    {"json-pointer", "/foo/0", true},
    {"json-pointer", "/a~1b", true},
    {"json-pointer", "/c%d", true},
    {"json-pointer", "/ ", true},
    {"json-pointer", "/~01", true},
    {"json-pointer", "/foo/bar~", false},
    {"json-pointer", "#", false},
    {"json-pointer", "#/", false},
    {"json-pointer", "#a", false},
    {"json-pointer", "/~0~", false},
    {"json-pointer", "/~-1", false},
    {"json-pointer", "/~~", false},
    {"json-pointer", "a", false},
    {"json-pointer", "0", false},
    {"json-pointer", "a/a", false},
    /* relative-json-pointer */
    {"relative-json-pointer", "1", true},
    {"relative-json-pointer", "0/foo/bar", true},
    {"relative-json-pointer", "2/0/baz/1/zip", true},
    {"relative-json-pointer", "0#", true},
    {"relative-json-pointer", "120/foo/bar", true},
    {"relative-json-pointer", "/foo/bar", false},
    {"relative-json-pointer", "-1/foo/bar", false},
    {"relative-json-pointer", "+1/foo/bar", false},
    {"relative-json-pointer", "0##", false},
    {"relative-json-pointer", "01/a", false},
    {"relative-json-pointer", "01#", false},
    {"relative-json-pointer", "", false},
    /* regex: ECMA-262 */
    {"regex", "([abc])+\\s+$", true},
    {"regex", "^\\p{Letter}+$", true},
    {"regex", "^(abc]", false},
    {"regex", "\\a", false},
    {"regex", "[z-a]", false},
    /* PCRE and Python syntax is not ECMA-262 ... */
    {"regex", "(?P<name>x)", false},
    {"regex", "(?P<n>a)(?P=n)", false},
    {"regex", "(?#comment)a", false},
    {"regex", "(?i)abc", false},
    {"regex", "(?ims)abc", false},
    {"regex", "a++", false},
    {"regex", "(?>a)", false},
    {"regex", "\\z", false},
    {"regex", "\\Qa\\E", false},
    {"regex", "\\012", false},
    {"regex", "\\1", false},
    {"regex", "\\p{Xan}", false},
    /* ... ECMA-262 is, PCRE2 able to run it or not */
    {"regex", "(?<name>x)", true},
    {"regex", "(?<n>a)\\k<n>", true},
    {"regex", "(?<=a+)b", true},
    {"regex", "(?<=ab|c)d", true},
    {"regex", "(?i:a)(?-s:.)", true},
    {"regex", "(?i:\\w)", true},
    {"regex", "a{70000}", true},
    {"regex", "[]", true},
    {"regex", "[^]", true},
    {"regex", "\\cA", true},
    {"regex", "[[:alpha:]]", true},
    {"regex", "\\p{Script=Greek}\\P{Assigned}", true},
};

Test(schema_format, every_asserted_format)
{
    size_t failed = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ee_status st = check(cases[i].format, cases[i].value, 0);
        ee_status want = cases[i].valid ? EE_OK : EE_EVALIDATION;
        if (st != want) {
            failed++;
            cr_log_error("format %s, \"%s\": expected %s, got %s", cases[i].format,
                         cases[i].value, cases[i].valid ? "valid" : "invalid",
                         ee_status_name(st));
        }
    }
    cr_expect_eq(failed, 0, "%zu format cases failed (see the log)", failed);
}

/* Strings may hold U+0000 (JSON_ALLOW_NUL): never part of a valid format. */
Test(schema_format, nul_is_never_valid)
{
    static const char *const formats[] = {"email", "idn-email", "hostname", "idn-hostname",
                                          "uri", "uri-reference", "iri", "duration",
                                          "json-pointer", "regex", "uri-template"};
    static const char *const values[] = {"a\\u0000b@example.com", "a\\u0000b@example.com",
                                         "exa\\u0000mple.com", "exa\\u0000mple.com",
                                         "http://a/\\u0000", "\\u0000", "http://a/\\u0000",
                                         "P1\\u0000", "/a\\u0000~", "a\\\\a",
                                         "{a}\\u0000"};
    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++) {
        char schema[64], inst[64];
        snprintf(schema, sizeof schema, "{\"format\":\"%s\"}", formats[i]);
        snprintf(inst, sizeof inst, "\"%s\"", values[i]);
        ee_schema *s = NULL;
        cr_assert_eq(ee_schema_compile(&s, schema), EE_OK);
        cr_expect_eq(ee_schema_validate(s, inst, NULL), EE_EVALIDATION, "%s %s", formats[i],
                     inst);
        ee_schema_free(s);
    }
}

Test(schema_format, report_names_the_format_not_the_value)
{
    ee_schema *s = NULL;
    cr_assert_eq(ee_schema_compile(&s, "{\"properties\":{\"to\":{\"format\":\"email\"}}}"), EE_OK);
    char *out = NULL;
    cr_expect_eq(ee_schema_validate(s, "{\"to\":\"sk-canary-SECRET-4242\"}", &out), EE_EVALIDATION);
    cr_assert_not_null(out);
    cr_expect(strstr(out, "\"format\"") != NULL, "%s", out);
    cr_expect(strstr(out, "is not a valid \\\"email\\\"") != NULL, "%s", out);
    cr_expect(strstr(out, "canary") == NULL, "%s", out);
    cr_expect(strstr(ee_error_last_message(), "canary") == NULL);
    ee_free(out);
    ee_schema_free(s);
}

Test(schema_format, unknown_formats_and_other_types_pass)
{
    cr_expect_eq(check("not-a-format", "anything", 0), EE_OK);
    cr_expect_eq(check("color", "not a colour", 0), EE_OK);
    json_t *schema = json_pack("{s:s}", "format", "email");
    ee_schema *s = NULL;
    cr_assert_eq(ee__schema_compile(&s, schema), EE_OK);
    json_t *v = json_integer(12);
    cr_expect_eq(ee__schema_validate(s, v, NULL), EE_OK);
    json_decref(v);
    ee_schema_free(s);
    json_decref(schema);
    /* a non-string format is a malformed schema */
    cr_expect_eq(ee_schema_compile(&s, "{\"format\": 3}"), EE_EINVAL);
}

Test(schema_format, assertion_can_be_turned_off)
{
    /* the compile flag (the engine's SCHEMA_FORMAT_ASSERT=0) */
    cr_expect_eq(check("email", "not-an-email", 0), EE_EVALIDATION);
    cr_expect_eq(check("email", "not-an-email", EE__SCHEMA_FORMAT_ANNOTATE), EE_OK);
    /* the schema's $vocabulary: format-annotation without format-assertion */
    ee_schema *s = NULL;
    cr_assert_eq(ee_schema_compile(&s, "{\"$vocabulary\":{"
                                       "\"https://json-schema.org/draft/2020-12/vocab/core\":true,"
                                       "\"https://json-schema.org/draft/2020-12/vocab/"
                                       "format-annotation\":true},\"format\":\"email\"}"),
                 EE_OK);
    cr_expect_eq(ee_schema_validate(s, "\"not-an-email\"", NULL), EE_OK);
    ee_schema_free(s);
    cr_assert_eq(ee_schema_compile(&s, "{\"$vocabulary\":{"
                                       "\"https://json-schema.org/draft/2020-12/vocab/"
                                       "format-assertion\":true},\"format\":\"email\"}"),
                 EE_OK);
    cr_expect_eq(ee_schema_validate(s, "\"not-an-email\"", NULL), EE_EVALIDATION);
    ee_schema_free(s);
}

/* Format checks draw from the work budget: 900 URIs of 1000 bytes are
 * checked, but 40 formats on each of them end in EE_ETOOBIG. */
Test(schema_format, format_work_is_bounded)
{
    char *uri = malloc(1001);
    memcpy(uri, "http://a/", 9);
    memset(uri + 9, 'a', 991);
    uri[1000] = '\0';
    json_t *inst = json_array();
    for (int i = 0; i < 900; i++)
        json_array_append_new(inst, json_string(uri));
    free(uri);
    ee_schema *s = NULL;
    cr_assert_eq(ee_schema_compile(&s, "{\"items\":{\"format\":\"uri\"}}"), EE_OK);
    cr_expect_eq(ee__schema_validate(s, inst, NULL), EE_OK, "%s", ee_error_last_message());
    ee_schema_free(s);
    json_t *all = json_array();
    for (int i = 0; i < 40; i++)
        json_array_append_new(all, json_pack("{s:s}", "format", "uri"));
    json_t *schema = json_pack("{s:{s:o}}", "items", "allOf", all);
    cr_assert_eq(ee__schema_compile(&s, schema), EE_OK, "%s", ee_error_last_message());
    cr_expect_eq(ee__schema_validate(s, inst, NULL), EE_ETOOBIG, "%s", ee_error_last_message());
    ee_schema_free(s);
    json_decref(schema);
    json_decref(inst);
}

/* The engine option: the catalog validates a workflow's parameters with
 * format asserted by default, and as an annotation with
 * SCHEMA_FORMAT_ASSERT=0. */
static ee_status validate_email_param(const char *assert_option)
{
    ee_config *cfg = ee_test_config_new("memory:", NULL, NULL);
    if (assert_option != NULL)
        ee_test_config_set(cfg, "SCHEMA_FORMAT_ASSERT", assert_option);
    ee_engine *e = ee_test_engine_open_config(cfg);
    char *out = NULL;
    cr_assert_eq(ee_catalog_create(e,
                                   "{\"n8nWorkflowId\": \"wf1\", \"name\": \"Mailer\", "
                                   "\"inputSchema\": {\"type\": \"object\", \"properties\": "
                                   "{\"to\": {\"type\": \"string\", \"format\": \"email\"}}}}",
                                   &out),
                 EE_OK, "%s", ee_error_last_message());
    json_t *doc = json_loads(out, 0, NULL);
    ee_free(out);
    const char *id = json_string_value(json_object_get(doc, "id"));
    cr_assert_not_null(id, "no id in the created entry");
    ee_status st = ee_catalog_validate_input(e, NULL, id, "{\"to\": \"not-an-email\"}", &out);
    ee_free(out);
    out = NULL;
    cr_expect_eq(ee_catalog_validate_input(e, NULL, id, "{\"to\": \"ops@example.com\"}", &out), EE_OK,
                 "%s", ee_error_last_message());
    ee_free(out);
    json_decref(doc);
    ee_engine_close(e);
    return st;
}

Test(schema_format, engine_option_schema_format_assert)
{
    cr_expect_eq(validate_email_param(NULL), EE_EVALIDATION);
    cr_expect_eq(validate_email_param("1"), EE_EVALIDATION);
    cr_expect_eq(validate_email_param("0"), EE_OK);
}
