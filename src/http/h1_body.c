/* h1_body.c — the HTTP/1.1 body decoder (RFC 9112 §6.3, §7.1): counts length-delimited and
 * until-close bodies, and walks chunked framing one byte at a time (chunk-size lines, the
 * CRLF after each chunk, the trailer section) while chunk data is handed out in place,
 * never copied. State survives between calls, so input may be split anywhere.
 */
#include "http/h1.h"

#include <string.h>

#include "http/msg.h"

#define MAX_CHUNK ((uint64_t)1 << 62)

/* b->state for a chunked body. The states before CS_DATA are those of a chunk-size line:
 * chunk-size *( BWS ";" BWS ext-name [ BWS "=" BWS ext-value ] ) CRLF. */
enum {
    CS_SIZE0,     /* the first hex digit */
    CS_SIZE,      /* more hex digits, or what may follow them */
    CS_WS_SEMI,   /* BWS seen after a size or an extension: only ';' may follow */
    CS_EXT_NAME0, /* after ';' */
    CS_EXT_NAME,  /* in an extension name */
    CS_WS_EQ,     /* BWS after a name: '=' or ';' */
    CS_EXT_VAL0,  /* after '=' */
    CS_EXT_VAL,   /* in a token value */
    CS_QUOTED,    /* in a quoted-string value */
    CS_QESC,      /* after a backslash in it */
    CS_EXT_END,   /* after the closing quote */
    CS_SIZE_LF,   /* CR seen: LF must follow */
    CS_DATA,      /* b->remaining bytes of data */
    CS_DATA_CR,   /* the CRLF after the data */
    CS_DATA_LF,
    CS_TRAILER,  /* at the start of a trailer line (or of the final CRLF) */
    CS_TLINE,    /* in a trailer line, copied to trailer_buf */
    CS_TLINE_LF, /* its CR seen */
    CS_END_LF,   /* the final CR seen */
    CS_DONE,
    CS_ERROR,
};

void h1_body_init(struct h1_body *b, enum http_body_kind kind, uint64_t content_length)
{
    b->kind = kind;
    b->remaining = kind == HTTP_BODY_LENGTH ? content_length : 0;
    b->state = kind == HTTP_BODY_CHUNKED ? CS_SIZE0 : 0;
    b->line_len = 0;
    b->trailer_len = 0;
    b->response = false;
}

static int fail(struct h1_body *b, struct h1_error *err, const char *reason)
{
    b->state = CS_ERROR;
    err->status = b->response ? 502 : 400;
    err->reason = reason;
    return H1B_ERROR;
}

/* After a size, a name or a value: ';', the CR, or BWS before a ';'. */
static const char *after_token(struct h1_body *b, char ch, uint8_t k, const char *what)
{
    if (ch == ';')
        b->state = CS_EXT_NAME0;
    else if (ch == '\r')
        b->state = CS_SIZE_LF;
    else if (k & H1C_OWS)
        b->state = CS_WS_SEMI;
    else
        return ch == '\n' ? "bare LF in chunk-size line" : what;
    return NULL;
}

static unsigned hex_value(char ch)
{
    return ch <= '9' ? (unsigned)(ch - '0') : (unsigned)((ch | 0x20) - 'a' + 10);
}

/* One byte of a chunk-size line before its LF. Returns NULL or why the line is invalid. */
static const char *size_line_byte(struct h1_body *b, char ch)
{
    uint8_t k = h1_ctype[(uint8_t)ch];
    const char *bad_ext = "bad chunk extension";
    switch (b->state) {
    case CS_SIZE0:
        if (!(k & H1C_HEX))
            return "bad chunk size";
        b->remaining = hex_value(ch);
        b->state = CS_SIZE;
        return NULL;
    case CS_SIZE:
        if (!(k & H1C_HEX))
            return after_token(b, ch, k, "bad chunk size");
        if (b->remaining > (MAX_CHUNK - hex_value(ch)) >> 4)
            return "chunk size overflow";
        b->remaining = b->remaining << 4 | hex_value(ch);
        return NULL;
    case CS_WS_SEMI:
        if (ch == ';')
            b->state = CS_EXT_NAME0;
        return (k & H1C_OWS) || ch == ';' ? NULL : bad_ext;
    case CS_EXT_NAME0:
        if (k & H1C_TCHAR)
            b->state = CS_EXT_NAME;
        return k & (H1C_OWS | H1C_TCHAR) ? NULL : bad_ext;
    case CS_EXT_NAME:
        if (k & H1C_TCHAR)
            return NULL;
        if (ch == '=' || (k & H1C_OWS)) {
            b->state = ch == '=' ? CS_EXT_VAL0 : CS_WS_EQ;
            return NULL;
        }
        return after_token(b, ch, k, bad_ext);
    case CS_WS_EQ:
        if (ch == '=' || ch == ';')
            b->state = ch == '=' ? CS_EXT_VAL0 : CS_EXT_NAME0;
        return (k & H1C_OWS) || ch == '=' || ch == ';' ? NULL : bad_ext;
    case CS_EXT_VAL0:
        if (k & H1C_TCHAR)
            b->state = CS_EXT_VAL;
        else if (ch == '"')
            b->state = CS_QUOTED;
        return k & (H1C_OWS | H1C_TCHAR) || ch == '"' ? NULL : bad_ext;
    case CS_EXT_VAL:
        return k & H1C_TCHAR ? NULL : after_token(b, ch, k, bad_ext);
    case CS_QUOTED:
        if (ch == '"' || ch == '\\')
            b->state = ch == '"' ? CS_EXT_END : CS_QESC;
        return k & H1C_QDTEXT || ch == '"' || ch == '\\' ? NULL : bad_ext;
    case CS_QESC:
        b->state = CS_QUOTED;
        return k & H1C_VALUE ? NULL : bad_ext;
    case CS_EXT_END:
        return after_token(b, ch, k, bad_ext);
    default: /* CS_SIZE_LF */
        return "bare CR in chunk-size line";
    }
}

/* Framing and hop-by-hop fields have no place in trailers (RFC 9110 §6.5.1): dropped. */
static bool trailer_dropped(struct hstr name)
{
    static const char *const names[] = {"content-length",
                                        "transfer-encoding",
                                        "host",
                                        "connection",
                                        "keep-alive",
                                        "te",
                                        "proxy-connection",
                                        "upgrade"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (hstr_ieq_c(name, names[i]))
            return true;
    return false;
}

/* One byte of the trailer section. Returns NULL or why it is invalid. */
static const char *trailer_byte(struct h1_body *b, char ch)
{
    struct hstr name, value;
    switch (b->state) {
    case CS_TRAILER:
        if (ch == '\r') {
            b->state = CS_END_LF;
            return NULL;
        }
        b->line_len = 0;
        b->state = CS_TLINE;
        /* fall through */
    case CS_TLINE:
        if (ch == '\n')
            return "bare LF in trailers";
        if (ch == '\r') {
            b->state = CS_TLINE_LF;
            return NULL;
        }
        if (b->trailer_len + 2 >= H1_MAX_TRAILER) /* room for this byte and the CRLF */
            return "trailers too large";
        b->trailer_buf[b->trailer_len++] = ch;
        b->line_len++;
        return NULL;
    case CS_TLINE_LF: {
        if (ch != '\n')
            return "bare CR in trailers";
        char *line = b->trailer_buf + b->trailer_len - b->line_len;
        const char *why = h1_field_line(line, b->line_len, &name, &value);
        if (why)
            return why;
        if (trailer_dropped(name)) {
            b->trailer_len -= b->line_len;
        } else {
            b->trailer_buf[b->trailer_len++] = '\r';
            b->trailer_buf[b->trailer_len++] = '\n';
        }
        b->state = CS_TRAILER;
        return NULL;
    }
    default: /* CS_END_LF */
        if (ch != '\n')
            return "bare CR after trailers";
        b->state = CS_DONE;
        return NULL;
    }
}

/* The chunked decoder: framing bytes one by one until data, which is handed out whole. */
static int chunked_step(struct h1_body *b, const char *in, size_t len, size_t *consumed,
                        const char **data, size_t *dlen, struct h1_error *err)
{
    size_t i = 0;
    const char *why = NULL;
    for (; i < len && b->state != CS_DONE; i++) {
        char ch = in[i];
        if (b->state == CS_DATA) {
            size_t n = len - i < b->remaining ? len - i : (size_t)b->remaining;
            *data = in + i;
            *dlen = n;
            *consumed = i + n;
            b->remaining -= n;
            if (b->remaining == 0)
                b->state = CS_DATA_CR;
            return H1B_DATA;
        } else if (b->state < CS_SIZE_LF || (b->state == CS_SIZE_LF && ch != '\n')) {
            if (ch != '\r' && ++b->line_len > H1_MAX_CHUNK_LINE)
                why = "chunk-size line too long";
            else
                why = size_line_byte(b, ch);
        } else if (b->state == CS_SIZE_LF) {
            b->state = b->remaining ? CS_DATA : CS_TRAILER;
            b->line_len = 0;
        } else if (b->state == CS_DATA_CR || b->state == CS_DATA_LF) {
            if (ch != (b->state == CS_DATA_CR ? '\r' : '\n'))
                why = "chunk data not followed by CRLF";
            b->state = b->state == CS_DATA_CR ? CS_DATA_LF : CS_SIZE0;
        } else if (b->state == CS_ERROR) {
            why = "body already failed";
        } else {
            why = trailer_byte(b, ch);
        }
        if (why) {
            *consumed = i;
            return fail(b, err, why);
        }
    }
    *consumed = i;
    if (b->state == CS_ERROR)
        return fail(b, err, "body already failed");
    return b->state == CS_DONE ? H1B_DONE : H1B_AGAIN;
}

int h1_body_step(struct h1_body *b, const char *in, size_t len, bool eof, size_t *consumed,
                 const char **data, size_t *dlen, struct h1_error *err)
{
    *consumed = 0;
    *data = NULL;
    *dlen = 0;
    switch (b->kind) {
    case HTTP_BODY_CHUNKED:
        return chunked_step(b, in, len, consumed, data, dlen, err);
    case HTTP_BODY_LENGTH: {
        if (b->remaining == 0)
            return H1B_DONE;
        if (len == 0)
            return H1B_AGAIN;
        size_t n = len < b->remaining ? len : (size_t)b->remaining;
        b->remaining -= n;
        *data = in;
        *dlen = *consumed = n;
        return H1B_DATA;
    }
    case HTTP_BODY_UNTIL_CLOSE:
        if (len == 0)
            return eof ? H1B_DONE : H1B_AGAIN;
        *data = in;
        *dlen = *consumed = len;
        return H1B_DATA;
    default:
        return H1B_DONE;
    }
}

/* See h1.h. Lines were validated by the decoder. */
void h1_body_trailers(const struct h1_body *dec, struct http_msg *m, struct arena *a)
{
    const char *p = dec->trailer_buf, *end = p + dec->trailer_len;
    uint32_t n = 0;
    for (const char *q = p; q < end; q++)
        n += *q == '\n';
    struct http_hdr *t = n ? arena_alloc(a, n * sizeof(*t)) : NULL;
    char *copy = n ? arena_alloc(a, dec->trailer_len) : NULL;
    if (!t || !copy)
        return;
    memcpy(copy, p, dec->trailer_len);
    m->ntrailers = 0;
    for (const char *line = copy; line < copy + dec->trailer_len && m->ntrailers < n;) {
        const char *eol = memchr(line, '\n', (size_t)(copy + dec->trailer_len - line));
        if (!eol)
            break;
        size_t len = (size_t)(eol - line) - (eol > line && eol[-1] == '\r');
        struct http_hdr *h = &t[m->ntrailers];
        if (!h1_field_line(line, len, &h->name, &h->value))
            m->ntrailers++;
        line = eol + 1;
    }
    m->trailers = t;
}
