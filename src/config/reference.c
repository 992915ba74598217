/* reference.c — prints the configuration reference (markdown) from the schema tables.
 *
 * doc/config.md is an introduction followed by exactly this output; a unit test checks
 * that they agree, so the reference cannot drift from what the loader accepts.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdbool.h>
#include <string.h>

#include "schema.h"

static void print_range(FILE *out, const struct cfg_key *k)
{
    char lo[32], hi[32];
    if (k->type == CT_U32) {
        fprintf(out, "integer %" PRId64 "..%" PRId64, k->min, k->max);
        return;
    }
    if (k->type == CT_SIZE) {
        fprintf(out, "size %" PRId64 "..%" PRId64 " bytes (`k`, `m` suffixes)", k->min, k->max);
        return;
    }
    /* durations: print the bounds the way they are written */
    int64_t v[2] = {k->min, k->max};
    char *b[2] = {lo, hi};
    for (int i = 0; i < 2; i++) {
        if (v[i] && v[i] % 3600000 == 0)
            snprintf(b[i], 32, "%" PRId64 "h", v[i] / 3600000);
        else if (v[i] && v[i] % 60000 == 0)
            snprintf(b[i], 32, "%" PRId64 "m", v[i] / 60000);
        else if (v[i] && v[i] % 1000 == 0)
            snprintf(b[i], 32, "%" PRId64 "s", v[i] / 1000);
        else
            snprintf(b[i], 32, "%" PRId64 "ms", v[i]);
    }
    fprintf(out, "duration %s..%s", lo, hi);
}

/* An HTML anchor id for a section path: "backends.<name>.servers[]" -> "backends-name-servers". */
static void print_slug(FILE *out, const char *path)
{
    bool dash = false, any = false;
    for (; *path; path++) {
        if (isalnum((unsigned char)*path) || *path == '_') {
            if (dash && any)
                fputc('-', out);
            fputc(*path, out);
            dash = false;
            any = true;
        } else {
            dash = true;
        }
    }
}

/* A section title: the path in backticks, then a note such as "(mode http)" after it. */
static void print_title(FILE *out, const char *path)
{
    const char *note = strstr(path, " (");
    if (note)
        fprintf(out, "`%.*s`%s", (int)(note - path), path, note);
    else
        fprintf(out, "`%s`", path);
}

static void print_link(FILE *out, const char *what, const struct cfg_section *sub)
{
    fprintf(out, "%s, see [", what);
    print_title(out, sub->path);
    fputs("](#", out);
    print_slug(out, sub->path);
    fputc(')', out);
}

static void print_type(FILE *out, const struct cfg_key *k)
{
    switch (k->type) {
    case CT_U32:
    case CT_SIZE:
    case CT_DURATION:
        print_range(out, k);
        break;
    case CT_BOOL:
        fputs("boolean", out);
        break;
    case CT_ENUM:
        for (const struct cfg_enum *e = k->enums, *first = e; e->name; e++)
            if (e->value >= 0)
                fprintf(out, "%s`%s`", e == first ? "" : ", ", e->name);
        break;
    case CT_STRING:
        fputs("string", out);
        break;
    case CT_NAME:
        fputs("name", out);
        break;
    case CT_ADDR:
        fputs("address", out);
        break;
    case CT_SECTION:
        print_link(out, "mapping", k->sub);
        break;
    case CT_LIST:
        print_link(out, "list", k->sub);
        break;
    case CT_NAMED:
        print_link(out, "mapping of names", k->sub);
        break;
    case CT_CUSTOM:
        if (k->sub)
            print_link(out, k->type_doc, k->sub);
        else
            fputs(k->type_doc, out);
        if (k->alt) {
            fputs(" or [", out);
            print_title(out, k->alt->path);
            fputs("](#", out);
            print_slug(out, k->alt->path);
            fputc(')', out);
        }
        break;
    }
}

static void print_default(FILE *out, const struct cfg_key *k)
{
    if (k->flags & CK_REQUIRED)
        fputs("**required**", out);
    else if (k->def)
        fprintf(out, "`%s`", k->def);
    else if (k->def_doc)
        fputs(k->def_doc, out);
}

/* Reserved enumeration names, so that users know they are coming. */
static void print_reserved(FILE *out, const struct cfg_key *k)
{
    bool any = false;
    if (k->type != CT_ENUM)
        return;
    for (const struct cfg_enum *e = k->enums; e->name; e++) {
        if (e->value < 0) {
            fprintf(out, "%s`%s`", any ? ", " : " Not supported yet: ", e->name);
            any = true;
        }
    }
    if (any)
        fputc('.', out);
}

static void print_section(FILE *out, const struct cfg_section *sec)
{
    if (*sec->path) {
        fputs("<a id=\"", out);
        print_slug(out, sec->path);
        fputs("\"></a>\n\n## ", out);
        print_title(out, sec->path);
        fprintf(out, "\n\n%s\n\n", sec->help);
    } else
        fprintf(out, "## Top level\n\n%s\n\n", sec->help);
    fputs("| key | type | default | description |\n| --- | --- | --- | --- |\n", out);
    for (size_t i = 0; i < sec->nkeys; i++) {
        const struct cfg_key *k = &sec->keys[i];
        fprintf(out, "| `%s` | ", k->name);
        print_type(out, k);
        fputs(" | ", out);
        print_default(out, k);
        fprintf(out, " | %s", k->help);
        print_reserved(out, k);
        fputs(" |\n", out);
    }
    fputc('\n', out);
    for (size_t i = 0; i < sec->nkeys; i++) {
        if (sec->keys[i].sub)
            print_section(out, sec->keys[i].sub);
        if (sec->keys[i].alt)
            print_section(out, sec->keys[i].alt);
    }
}

void config_reference_print(FILE *out)
{
    print_section(out, &cfg_root_section);
}
