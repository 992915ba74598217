/* test_addr.c — address text as logs and X-Forwarded-For write it: the hand-written IPv4
 * formatting against inet_ntop, ports, truncation, IPv6. */
#include <arpa/inet.h>
#include <string.h>

#include "http/filters/util.h"
#include "net/addr.h"
#include "test.h"

TEST(addr_format_ipv4_matches_inet_ntop)
{
    static const char *const ips[] = {"0.0.0.0",   "1.2.3.4",       "10.0.0.255",
                                      "127.0.0.1", "192.168.100.9", "255.255.255.255"};
    for (size_t i = 0; i < sizeof(ips) / sizeof(ips[0]); i++) {
        struct in_addr a;
        char out[16], ref[INET_ADDRSTRLEN];
        CHECK(inet_pton(AF_INET, ips[i], &a) == 1);
        inet_ntop(AF_INET, &a, ref, sizeof(ref));
        CHECK_EQ_U64(addr_ipv4_text(&a, out), strlen(ref));
        CHECK(strcmp(out, ref) == 0);
    }
    struct sockaddr_any s;
    const char *why;
    char buf[ADDR_STRLEN];
    CHECK(addr_parse("255.255.255.255:65535", &s, &why) == 0);
    CHECK(strcmp(addr_format(&s, buf, sizeof(buf)), "255.255.255.255:65535") == 0);
    CHECK(addr_parse("10.0.0.1:1", &s, &why) == 0);
    CHECK(strcmp(addr_format(&s, buf, sizeof(buf)), "10.0.0.1:1") == 0);
    CHECK(strcmp(addr_format(&s, buf, 5), "10.0") == 0); /* cut, terminated */
    CHECK(addr_parse("[::1]:80", &s, &why) == 0);
    CHECK(strcmp(addr_format(&s, buf, sizeof(buf)), "[::1]:80") == 0);
    CHECK_EQ_U64(client_ip_text(&s, buf, sizeof(buf)), 3);
    CHECK(strcmp(buf, "::1") == 0);
    CHECK(addr_parse("[::ffff:1.2.3.4]:80", &s, &why) == 0);
    CHECK_EQ_U64(client_ip_text(&s, buf, sizeof(buf)), 7);
    CHECK(strcmp(buf, "1.2.3.4") == 0);
}
