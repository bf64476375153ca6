#ifndef TG_MIDDLEWARE_AUDIT_H
#define TG_MIDDLEWARE_AUDIT_H

#include "middleware/chain.h"

/* Done phase, on routes with "audit": one record per request to the audit sink
 * (gateway/audit.h), its final status included (499 when the client left): a FHIR R4
 * AuditEvent shaped as IHE Basic Audit Log Patterns (BALP) has it. Who (the token's subject and
 * client id, else the client address), which patient (the route's patient parameter), what
 * (method, route), when, the outcome and the trace id. Never a body, a token, a header value or
 * a query string. */
extern const struct tg_mw_ops tg_mw_audit;

#endif
