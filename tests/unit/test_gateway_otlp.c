#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/new/assert.h>
#include <jansson.h>

#include "gateway/otlp.h"
#include "gateway/span.h"
#include "tests/support/otlp_attr.h"

TestSuite(otlp, .timeout = 10);

Test(otlp, encodes_the_json_mapping)
{
    struct tg_span s = {0};
    struct tg_otlp_opts o = {.service_name = NULL, .resource_attrs = "a=1, b = x%2Cy ,junk"};
    json_t *j, *span, *res;

    strcpy(s.trace_id, "0af7651916cd43dd8448eb211c80319c");
    strcpy(s.span_id, "b7ad6b7169203331");
    s.kind = TG_SPAN_CLIENT;
    s.start_ns = 1700000000123456789u;
    s.end_ns = 1700000000223456789u;
    s.status = 502;
    s.error = true;
    strcpy(s.name, "POST");
    strcpy(s.method, "POST");
    strcpy(s.peer, "questionnaire.internal");
    s.port = 9101;
    j = tg_otlp_encode(&o, &s, 1);
    cr_assert(not(zero(ptr, j)));
    span = json_array_get(
        json_object_get(
            json_array_get(json_object_get(json_array_get(json_object_get(j, "resourceSpans"), 0),
                                           "scopeSpans"),
                           0),
            "spans"),
        0);
    cr_assert(eq(str, (char *)json_string_value(json_object_get(span, "traceId")),
                 "0af7651916cd43dd8448eb211c80319c"));
    cr_assert(zero(ptr, json_object_get(span, "parentSpanId")), "a root span has none");
    cr_assert(eq(str, (char *)json_string_value(json_object_get(span, "startTimeUnixNano")),
                 "1700000000123456789"));
    cr_assert(eq(int, (int)json_integer_value(json_object_get(span, "kind")), 3));
    cr_assert(eq(
        int, (int)json_integer_value(json_object_get(json_object_get(span, "status"), "code")), 2));
    cr_assert(eq(
        str, (char *)json_string_value(json_object_get(otlp_attr(span, "server.port"), "intValue")),
        "9101"));
    res = json_object_get(json_array_get(json_object_get(j, "resourceSpans"), 0), "resource");
    cr_assert(eq(str,
                 (char *)json_string_value(json_object_get(otlp_attr(res, "b"), "stringValue")),
                 "x,y"));
    cr_assert(eq(
        str,
        (char *)json_string_value(json_object_get(otlp_attr(res, "service.name"), "stringValue")),
        "tracegate"));
    cr_assert(zero(ptr, otlp_attr(res, "junk")));
    json_decref(j);
}

Test(otlp, service_name_from_the_list_unless_otel_service_name)
{
    struct tg_otlp_opts o = {.resource_attrs = "service.name=from-list"};
    json_t *j = tg_otlp_encode(&o, NULL, 0), *res;

    res = json_object_get(json_array_get(json_object_get(j, "resourceSpans"), 0), "resource");
    cr_assert(eq(
        str,
        (char *)json_string_value(json_object_get(otlp_attr(res, "service.name"), "stringValue")),
        "from-list"));
    json_decref(j);
    o.service_name = "from-env";
    j = tg_otlp_encode(&o, NULL, 0);
    res = json_object_get(json_array_get(json_object_get(j, "resourceSpans"), 0), "resource");
    cr_assert(eq(
        str,
        (char *)json_string_value(json_object_get(otlp_attr(res, "service.name"), "stringValue")),
        "from-env"));
    json_decref(j);
}
