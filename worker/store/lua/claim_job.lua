-- Claim a job for one delivery attempt: queued/retrying -> running, or take over a running
-- job whose lease expired (its worker died). Anything else is left alone and reported.
-- ARGV: prefix, job_id, now, lease_until, worker, events_maxlen
--       [, credential field, ...]: also load what the attempt needs, in this round trip
-- Returns {claimed, previous state[, lease_until]}; a claim with fields to load returns
-- {1, previous, "", job hash (flat), the credential fields' values, sealed inline payload}
-- where the credential is <prefix>cred:<provider>:<user> (store/keys.py) and the payload
-- <prefix>payload:<job_id> (nil unless payload_kind is inline).
local prefix, job_id, now, lease_until, worker, maxlen =
    ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local job_key = prefix .. "job:" .. job_id
local state = redis.call("HGET", job_key, "state")
if not state then
    return {0, ""}
end
local note = ""
if state == "running" then
    local lease = tonumber(redis.call("HGET", job_key, "lease_until") or "0")
    if lease > tonumber(now) then
        return {0, state, tostring(lease)}
    end
    note = "lease expired; previous worker " .. (redis.call("HGET", job_key, "worker") or "?")
elseif state ~= "queued" and state ~= "retrying" then
    return {0, state}
end
redis.call("HSET", job_key, "state", "running", "updated_at", now, "lease_until", lease_until,
           "worker", worker, "started_at", now)
redis.call("HINCRBY", job_key, "runs", 1)
redis.call("ZREM", prefix .. "jobs:" .. state, job_id)
redis.call("ZADD", prefix .. "jobs:running", now, job_id)
redis.call("ZREM", prefix .. "due", job_id)
local provider = redis.call("HGET", job_key, "provider") or ""
redis.call("XADD", prefix .. "events", "MAXLEN", "~", maxlen, "*",
           "job", job_id, "from", state, "to", "running", "at", now, "worker", worker, "note", note,
           "provider", provider)
if #ARGV <= 6 then
    return {1, state}
end
local user = redis.call("HGET", job_key, "user") or ""
local cred = redis.call("HMGET", prefix .. "cred:" .. provider .. ":" .. user, unpack(ARGV, 7))
local payload = false
if redis.call("HGET", job_key, "payload_kind") == "inline" then
    payload = redis.call("GET", prefix .. "payload:" .. job_id)
end
return {1, state, "", redis.call("HGETALL", job_key), cred, payload}
