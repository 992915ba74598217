/* ws_handshake.c — Sec-WebSocket-Key and Sec-WebSocket-Accept (RFC 6455 §4.1, §4.2.2);
 * see ws_handshake.h. The digest and the random bytes are OpenSSL's. */
#include "http/ws_handshake.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <string.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

bool ws_key_new(char out[WS_KEY_LEN + 1])
{
    unsigned char nonce[16];
    if (RAND_bytes(nonce, sizeof(nonce)) != 1)
        return false;
    return EVP_EncodeBlock((unsigned char *)out, nonce, sizeof(nonce)) == WS_KEY_LEN;
}

bool ws_accept_of(struct hstr key, char out[WS_ACCEPT_LEN + 1])
{
    char in[128];
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (key.len > sizeof(in) - sizeof(WS_GUID))
        return false;
    memcpy(in, key.p, key.len);
    memcpy(in + key.len, WS_GUID, sizeof(WS_GUID) - 1);
    if (EVP_Digest(in, key.len + sizeof(WS_GUID) - 1, md, &mdlen, EVP_sha1(), NULL) != 1 ||
        mdlen != 20)
        return false;
    return EVP_EncodeBlock((unsigned char *)out, md, 20) == WS_ACCEPT_LEN;
}
