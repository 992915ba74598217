/* test_geo.c — country and continent code sets, route conditions and country ACLs
 * (stats/geo.h); lookups without a database. Lookups in a real .mmdb are tested end to
 * end (tests/e2e/test_geo.py builds one).
 */
#include <string.h>

#include "stats/geo.h"
#include "test.h"

static struct geo_info at(const char *country, const char *continent)
{
    struct geo_info g = {"", "", 0};
    strcpy(g.country, country);
    strcpy(g.continent, continent);
    return g;
}

TEST(geo_codes_and_matches)
{
    CHECK(geo_code_index("AA", 2) == 0 && geo_code_index("zz", 2) == 675);
    CHECK(geo_code_index("A1", 2) < 0 && geo_code_index("FRA", 3) < 0);
    CHECK(geo_is_continent("eu", 2) && !geo_is_continent("XX", 2));
    CHECK(geo_is_country("FR", 2) && geo_is_country("zw", 2) && geo_is_country("AD", 2));
    CHECK(geo_is_country("XK", 2) && !geo_is_country("ZZ", 2) && !geo_is_country("EU", 2));
    CHECK(!geo_is_country("F", 1) && !geo_is_country("FRA", 3) && !geo_is_country("", 0));
    struct geo_match m = {0};
    struct geo_info fr = at("FR", "EU"), us = at("US", "NA"), none = at("", "");
    CHECK(geo_match_holds(&m, &none)); /* no condition: everyone */
    geo_codes_add(&m.countries, geo_code_index("FR", 2));
    geo_codes_add(&m.countries, geo_code_index("fr", 2)); /* once */
    CHECK(m.countries.count == 1);
    CHECK(geo_match_holds(&m, &fr) && !geo_match_holds(&m, &us) && !geo_match_holds(&m, &none));
    struct geo_match c = {0};
    geo_codes_add(&c.continents, geo_code_index("NA", 2));
    CHECK(geo_match_holds(&c, &us) && !geo_match_holds(&c, &fr));
}

TEST(geo_acl_deny_wins_and_allow_refuses_unknown)
{
    struct geo_acl acl = {0};
    struct geo_info fr = at("FR", "EU"), us = at("US", "NA"), none = at("", "");
    CHECK(geo_acl_permits(&acl, &none));
    geo_codes_add(&acl.deny, geo_code_index("US", 2));
    CHECK(!geo_acl_permits(&acl, &us) && geo_acl_permits(&acl, &fr) && geo_acl_permits(&acl, &none));
    geo_codes_add(&acl.allow, geo_code_index("FR", 2));
    geo_codes_add(&acl.allow, geo_code_index("US", 2));
    CHECK(geo_acl_permits(&acl, &fr) && !geo_acl_permits(&acl, &us) && !geo_acl_permits(&acl, &none));
}

TEST(geo_lookup_without_database_is_unknown)
{
    struct sockaddr_any a;
    const char *why;
    CHECK(addr_parse("192.0.2.1:80", &a, &why) == 0);
    struct geo_info g = at("FR", "EU");
    CHECK(!geo_lookup(NULL, &a, &g));
    CHECK(g.country[0] == 0 && g.continent[0] == 0 && g.asn == 0);
    char err[128];
    CHECK(geo_open("/nonexistent/x.mmdb", err, sizeof(err)) == NULL);
    CHECK_STR_CONTAINS(err, "x.mmdb");
}
