#ifndef TG_MIDDLEWARE_SCOPES_H
#define TG_MIDDLEWARE_SCOPES_H

#include "middleware/chain.h"

/* Headers phase, after auth: on a route with "scopes", the token must grant one of them
 * (SMART on FHIR v1 or v2, auth/scope.h). A patient/ grant binds the request to the token's
 * patient: its patient claim (the issuer's patient_claim) must equal the route's patient
 * parameter. Else 403 with WWW-Authenticate error="insufficient_scope" and the JSON error. */
extern const struct tg_mw_ops tg_mw_scopes;

#endif
