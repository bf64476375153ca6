/* Registered claims: expiry, not-before, issuer and audience, with jansson. */
#include "auth/claims.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "gateway/err.h"

/* A NumericDate (RFC 7519 2): integer or real seconds; false when missing or another type. */
static bool numeric_date(const json_t *claims, const char *name, double *out)
{
    const json_t *v = json_object_get(claims, name);

    if (!json_is_number(v)) {
        return false;
    }
    *out = json_number_value(v);
    return isfinite(*out);
}

static bool aud_matches(const json_t *aud, const struct tg_claims_rule *rule)
{
    for (size_t i = 0; i < rule->n_audiences; i++) {
        size_t k;
        const json_t *v;
        if (json_is_string(aud) && strcmp(json_string_value(aud), rule->audiences[i]) == 0) {
            return true;
        }
        json_array_foreach(aud, k, v)
        {
            if (json_is_string(v) && strcmp(json_string_value(v), rule->audiences[i]) == 0) {
                return true;
            }
        }
    }
    return false;
}

int tg_claims_check(const json_t *claims, const struct tg_claims_rule *rule, int64_t now_s,
                    const char **why)
{
    const char *iss = json_string_value(json_object_get(claims, "iss"));
    double exp = 0;
    double nbf = 0;
    double now = (double)now_s;

    if (!numeric_date(claims, "exp", &exp)) {
        *why = "no exp claim";
    } else if (now > exp + rule->skew_s) {
        *why = "token expired";
    } else if (json_object_get(claims, "nbf") != NULL &&
               (!numeric_date(claims, "nbf", &nbf) || now + rule->skew_s < nbf)) {
        *why = "token not yet valid";
    } else if (iss == NULL || strcmp(iss, rule->iss) != 0) {
        *why = "wrong issuer";
    } else if (rule->n_audiences > 0 && !aud_matches(json_object_get(claims, "aud"), rule)) {
        *why = "wrong audience";
    } else {
        *why = NULL;
        return TG_OK;
    }
    return TG_EBADTOKEN;
}

const char *tg_claims_text(const json_t *claims, const char *name, char *buf, size_t cap)
{
    const json_t *v = json_object_get(claims, name);
    const char *s;

    if (json_is_integer(v)) {
        snprintf(buf, cap, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return buf;
    }
    s = json_string_value(v);
    if (s == NULL || strlen(s) != json_string_length(v)) {
        return NULL; /* absent, or a NUL inside that would cut the value short */
    }
    for (const char *p = s; *p != '\0'; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            return NULL;
        }
    }
    return s;
}
