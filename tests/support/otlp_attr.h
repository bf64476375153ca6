#ifndef TG_TESTS_SUPPORT_OTLP_ATTR_H
#define TG_TESTS_SUPPORT_OTLP_ATTR_H

/* Reading the gateway's OTLP JSON back, for the unit tests of the encoder and the integration
 * tests of the export alike (header only: the two test binaries share no support sources). Any
 * thread. */

#include <stddef.h>
#include <string.h>

#include <jansson.h>

/* The value object ({"stringValue": ...}, {"intValue": ...}...) of attribute key in the
 * "attributes" list of owner (a span or a resource), borrowed from owner; NULL when absent. */
static inline json_t *otlp_attr(json_t *owner, const char *key)
{
    size_t i;
    json_t *a;

    json_array_foreach(json_object_get(owner, "attributes"), i, a)
    {
        if (strcmp(json_string_value(json_object_get(a, "key")), key) == 0) {
            return json_object_get(a, "value");
        }
    }
    return NULL;
}

#endif
