#include "middleware/audit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "auth/issuer.h"
#include "auth/principal.h"
#include "gateway/audit.h"
#include "gateway/conf.h"
#include "gateway/err.h"
#include "gateway/stats.h"

#define SYS_EVENT_TYPE  "http://terminology.hl7.org/CodeSystem/audit-event-type"
#define SYS_INTERACTION "http://hl7.org/fhir/restful-interaction"
#define SYS_DCM         "http://dicom.nema.org/resources/ontology/DCM"
#define SYS_PART_TYPE   "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
#define SYS_SOURCE_TYPE "http://terminology.hl7.org/CodeSystem/security-source-type"
#define SYS_ENTITY_TYPE "http://terminology.hl7.org/CodeSystem/audit-entity-type"
#define SYS_OBJECT_ROLE "http://terminology.hl7.org/CodeSystem/object-role"
#define SYS_BALP_ENTITY "https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType"

static json_t *coding(const char *system, const char *code, const char *display)
{
    return display != NULL
               ? json_pack("{s:s, s:s, s:s}", "system", system, "code", code, "display", display)
               : json_pack("{s:s, s:s}", "system", system, "code", code);
}

/* The RESTful interaction and the AuditEvent action (C R U D E) of a method. */
static void interaction(const char *method, const char **code, const char **action)
{
    static const struct {
        const char *method, *code, *action;
    } map[] = {
        {"GET", "read", "R"},   {"HEAD", "read", "R"},   {"POST", "create", "C"},
        {"PUT", "update", "U"}, {"PATCH", "patch", "U"}, {"DELETE", "delete", "D"},
    };

    *code = "operation";
    *action = "E";
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        if (strcmp(method, map[i].method) == 0) {
            *code = map[i].code;
            *action = map[i].action;
        }
    }
}

/* BALP outcome: 0 success, 4 a client failure (4xx, 499), 8 an upstream's failure (its 5xx),
 * 12 the gateway's (a 5xx it decided: timeout, unreachable, overload). */
static const char *outcome(const struct tg_req_end *e)
{
    if (e->status < 400) {
        return "0";
    }
    if (e->status < 500) {
        return "4";
    }
    return e->err != TG_OK ? "12" : "8";
}

static json_t *agents(const struct tg_req *req)
{
    const struct tg_principal *pr = tg_principal_get(req);
    const char *client = pr != NULL && pr->client_id != NULL ? pr->client_id : req->client_ip;
    json_t *list = json_array();

    json_array_append_new(list, json_pack("{s:{s:[o]}, s:{s:{s:s}}, s:b, s:{s:s, s:s}}", "type",
                                          "coding", coding(SYS_DCM, "110153", "Source Role ID"),
                                          "who", "identifier", "value", client, "requestor", 0,
                                          "network", "address", req->client_ip, "type", "2"));
    if (pr != NULL && pr->sub != NULL) {
        json_t *user =
            json_pack("{s:{s:[o]}, s:{s:{s:s, s:s}}, s:b}", "type", "coding",
                      coding(SYS_PART_TYPE, "IRCP", "information recipient"), "who", "identifier",
                      "system", req->policy->auth->iss, "value", pr->sub, "requestor", 1);
        if (user != NULL && pr->jti != NULL) {
            json_object_set_new(user, "policy", json_pack("[s]", pr->jti));
        }
        json_array_append_new(list, user);
    }
    return list;
}

static json_t *entities(const struct tg_req *req)
{
    char status[64];
    json_t *list = json_array();

    if (req->patient != NULL) {
        char ref[256];
        snprintf(ref, sizeof(ref), "Patient/%.*s", (int)req->patient_len, req->patient);
        json_array_append_new(list, json_pack("{s:{s:s}, s:o, s:o}", "what", "reference", ref,
                                              "type", coding(SYS_ENTITY_TYPE, "1", "Person"),
                                              "role", coding(SYS_OBJECT_ROLE, "1", "Patient")));
    }
    snprintf(status, sizeof(status), "%d", req->end.status);
    json_array_append_new(list, json_pack("{s:{s:s}, s:o, s:[{s:s, s:s}, {s:s, s:s}]}", "what",
                                          "display", req->policy->name, "type",
                                          coding(SYS_ENTITY_TYPE, "2", "System Object"), "detail",
                                          "type", "method", "valueString", req->method, "type",
                                          "status", "valueString", status));
    json_array_append_new(list, json_pack("{s:{s:{s:s}}, s:o}", "what", "identifier", "value",
                                          req->trace.id, "type",
                                          coding(SYS_BALP_ENTITY, "XrequestId", NULL)));
    return list;
}

/* Now in UTC, as FHIR's instant: 2026-11-27T10:00:00.123Z. */
static void recorded(char *out, size_t cap)
{
    struct timespec ts;
    struct tm tm;
    char sec[32];

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(sec, sizeof(sec), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, cap, "%s.%03ldZ", sec, ts.tv_nsec / 1000000L);
}

static void audit_on_done(struct tg_req *req)
{
    struct tg_audit_sink *sink = req->conf->audit_sink;
    const char *code;
    const char *action;
    char when[48];
    char desc[96];
    json_t *rec;
    char *text;

    if (req->policy == NULL || !req->policy->audit || sink == NULL) {
        return;
    }
    interaction(req->method, &code, &action);
    recorded(when, sizeof(when));
    snprintf(desc, sizeof(desc), "%d%s%s", req->end.status, req->end.err != TG_OK ? " " : "",
             req->end.err != TG_OK ? tg_strerror(req->end.err) : "");
    rec = json_pack("{s:s, s:o, s:[o], s:s, s:s, s:s, s:s, s:o, s:{s:{s:s}, s:[o]}, s:o}",
                    "resourceType", "AuditEvent", "type",
                    coding(SYS_EVENT_TYPE, "rest", "RESTful Operation"), "subtype",
                    coding(SYS_INTERACTION, code, NULL), "action", action, "recorded", when,
                    "outcome", outcome(&req->end), "outcomeDesc", desc, "agent", agents(req),
                    "source", "observer", "display", "tracegate", "type",
                    coding(SYS_SOURCE_TYPE, "4", "Application Server"), "entity", entities(req));
    text = rec != NULL ? json_dumps(rec, JSON_COMPACT) : NULL;
    if (text != NULL) {
        tg_audit_sink_write(sink, text, strlen(text));
        if (req->stats != NULL) {
            TG_STAT_ADD(req->stats, audit_records, 1);
        }
    }
    free(text);
    json_decref(rec);
}

const struct tg_mw_ops tg_mw_audit = {
    .name = "audit",
    .on_done = audit_on_done,
};
