-- wrk script of `bench/run.sh durable`: POSTs a questionnaire submission, each with a key of its
-- own (Idempotency-Key), so that every request is a new submission; then the WRK line of
-- report.lua. TG_BENCH_TOOLS names the directory of report.lua, TG_BENCH_TAG the run.
dofile(os.getenv("TG_BENCH_TOOLS") .. "/report.lua")

local tag = os.getenv("TG_BENCH_TAG") or "x"
local n = 0
local body = '{"questionnaire":"PHQ-9","patient_id":"p-bench","answers":[' ..
    string.rep('{"item":1,"value":2},', 20) .. '{"item":21,"value":0}],"completed_at":' ..
    '"2026-01-02T03:04:05Z"}'

request = function()
  n = n + 1
  return wrk.format("POST", nil, {
    ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = string.format('"%s-%d"', tag, n),
  }, body)
end
