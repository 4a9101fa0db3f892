-- Move a job between states when its current state allows it (and, for a running job,
-- only by the worker that holds it), keeping indexes, the parked set and the event stream
-- in step. Terminal states get a TTL on the record and its attempt list.
-- A worker's attempt record goes in with the state change (one atomic step: a job never
-- shows a new state without the attempt that led to it), and its finished job's leftovers
-- (an inline payload) are deleted or given the record's TTL in the same step.
-- ARGV: prefix, job_id, to_state, now, allowed_from (comma-separated), expect_worker
--       ('' = any), events_maxlen, ttl (0 = keep), note, n_fields, field1, value1, ...,
--       then optionally: attempt JSON ('' = none), attempts to keep,
--       n_delete, key1, ..., n_expire, key1, ...
local prefix, job_id, to_state, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local allowed, expect_worker, maxlen, ttl, note = ARGV[5], ARGV[6], ARGV[7], tonumber(ARGV[8]), ARGV[9]
local job_key = prefix .. "job:" .. job_id
local attempts = job_key .. ":attempts"
local n = tonumber(ARGV[10])
local rest = 11 + n * 2  -- first optional argument
local state = redis.call("HGET", job_key, "state")
if not state then
    return {0, ""}
end
local attempt = ARGV[rest] or ""
if attempt ~= "" then  -- recorded even when the move is refused: the attempt happened
    redis.call("RPUSH", attempts, attempt)
    redis.call("LTRIM", attempts, -tonumber(ARGV[rest + 1]), -1)
end
if not string.find("," .. allowed .. ",", "," .. state .. ",", 1, true) then
    return {0, state}
end
if expect_worker ~= "" and redis.call("HGET", job_key, "worker") ~= expect_worker then
    return {0, state}
end
if n > 0 then
    local fields = {}
    for i = 1, n * 2 do
        fields[i] = ARGV[10 + i]
    end
    redis.call("HSET", job_key, unpack(fields))
end
redis.call("HSET", job_key, "state", to_state, "updated_at", now)
redis.call("ZREM", prefix .. "jobs:" .. state, job_id)
redis.call("ZADD", prefix .. "jobs:" .. to_state, now, job_id)
if to_state == "retrying" or to_state == "queued" then
    local run_at = tonumber(redis.call("HGET", job_key, "run_at") or "0")
    redis.call("ZADD", prefix .. "due", math.max(tonumber(now), run_at), job_id)
else
    redis.call("ZREM", prefix .. "due", job_id)
end
local provider = redis.call("HGET", job_key, "provider") or ""
local user = redis.call("HGET", job_key, "user") or ""
local parked = prefix .. "parked:" .. provider .. ":" .. user
if state == "parked" then
    redis.call("SREM", parked, job_id)
end
if to_state == "parked" then
    redis.call("SADD", parked, job_id)
end
redis.call("XADD", prefix .. "events", "MAXLEN", "~", maxlen, "*",
           "job", job_id, "from", state, "to", to_state, "at", now, "note", note,
           "provider", provider)
if ttl > 0 then
    redis.call("EXPIRE", job_key, ttl)
    redis.call("EXPIRE", attempts, ttl)
else
    redis.call("PERSIST", job_key)
    redis.call("PERSIST", attempts)
end
if ARGV[rest] then
    local i = rest + 2
    local n_delete = tonumber(ARGV[i])
    for k = 1, n_delete do
        redis.call("DEL", ARGV[i + k])
    end
    i = i + n_delete + 1
    for k = 1, tonumber(ARGV[i]) do
        if ttl > 0 then
            redis.call("EXPIRE", ARGV[i + k], ttl)
        end
    end
end
return {1, state}
