-- Create a job atomically: idempotency check, record, state index, event, and (optionally)
-- the dramatiq message, so a job never exists without its message nor a message without
-- its job.
-- KEYS: none (single-instance Redis; key names are derived from ARGV[1])
-- ARGV: prefix, job_id, now, idem_key ('' = none), idem_ttl, events_maxlen,
--       msg_queue_key ('' = none: the caller publishes to another broker),
--       msg_id, msg_data, n_fields, field1, value1, ...
local prefix, job_id, now = ARGV[1], ARGV[2], ARGV[3]
local idem_key, idem_ttl, maxlen = ARGV[4], ARGV[5], ARGV[6]
local msg_queue, msg_id, msg_data = ARGV[7], ARGV[8], ARGV[9]
local job_key = prefix .. "job:" .. job_id

if idem_key ~= "" then
    local existing = redis.call("GET", idem_key)
    if existing then
        redis.call("DEL", prefix .. "payload:" .. job_id)  -- stored in the same pipeline
        return {0, existing}
    end
    redis.call("SET", idem_key, job_id, "EX", idem_ttl)
end

local n = tonumber(ARGV[10])
local fields = {}
for i = 1, n * 2 do
    fields[i] = ARGV[10 + i]
end
redis.call("HSET", job_key, unpack(fields))
redis.call("HSET", job_key, "state", "queued", "created_at", now, "updated_at", now)
redis.call("ZADD", prefix .. "jobs:queued", now, job_id)
local run_at = tonumber(redis.call("HGET", job_key, "run_at") or "0")
redis.call("ZADD", prefix .. "due", math.max(tonumber(now), run_at), job_id)
redis.call("XADD", prefix .. "events", "MAXLEN", "~", maxlen, "*",
           "job", job_id, "from", "", "to", "queued", "at", now,
           "provider", redis.call("HGET", job_key, "provider") or "")
if msg_queue ~= "" then
    redis.call("HSET", msg_queue .. ".msgs", msg_id, msg_data)
    redis.call("RPUSH", msg_queue, msg_id)
end
return {1, job_id}
