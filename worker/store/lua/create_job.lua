-- Create jobs, many per call. Per job: idempotency check, its sealed payload (inline ones),
-- record, state and due indexes, event, and (optionally) its dramatiq message. Redis runs
-- the call as one step, so no client ever sees a job without its message nor a message
-- without its job. (A call refused for lack of memory is refused before its first write;
-- only a key of the wrong type could stop it half way.) A repeated idempotency key, also
-- one repeated inside the same call, yields the first job and stores nothing new.
-- Payloads, index entries and messages of all the call's jobs go in one command each (a
-- redis.call costs about as much as the work it does here); records and events, one per job.
-- KEYS: none (single-instance Redis; key names are derived from ARGV)
-- ARGV: prefix, now, idem_ttl, events_maxlen, then one argument per job (at most a few
--       thousand per call: Lua's unpack limit):
--   <header: JSON array> "\n" <sealed spec> <sealed payload> <message bytes>
--   header: job_id, idem_key ('' = none), msg_queue ('' = none: the caller publishes to
--           another broker), msg_id, spec_len, payload_len (-1: the payload is in a file),
--           provider, op, user, run_at, idempotency_key, then field, value, ... (strings)
-- Returns one string, an entry per job in order joined by ',': '+<job_id>' when created,
-- else the id of the job that already holds the idempotency key.
local prefix, now, idem_ttl, maxlen = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local now_n = tonumber(now)
local events = prefix .. "events"
local out, payloads, queued, due = {}, {}, {}, {}
local queues, msg_fields, msg_ids = {}, {}, {}

for a = 5, #ARGV do
    local arg = ARGV[a]
    local nl = string.find(arg, "\n", 1, true)
    local h = cjson.decode(string.sub(arg, 1, nl - 1))
    local job_id, idem = h[1], h[2]
    local existing = false
    if idem ~= "" then
        existing = redis.call("GET", idem)
        if not existing then
            redis.call("SET", idem, job_id, "EX", idem_ttl)
        end
    end
    if existing then
        out[#out + 1] = existing
    else
        local pos = nl + 1 + h[5]
        local spec = string.sub(arg, nl + 1, pos - 1)
        if h[6] >= 0 then
            payloads[#payloads + 1] = prefix .. "payload:" .. job_id
            payloads[#payloads + 1] = string.sub(arg, pos, pos + h[6] - 1)
            pos = pos + h[6]
        end
        local fields = {"id", job_id, "provider", h[7], "op", h[8], "user", h[9], "spec", spec,
                        "attempts", "0", "throttles", "0", "runs", "0", "run_at", h[10],
                        "idempotency_key", h[11]}
        for i = 12, #h do
            fields[#fields + 1] = h[i]
        end
        local n = #fields
        fields[n + 1], fields[n + 2] = "state", "queued"
        fields[n + 3], fields[n + 4] = "created_at", now
        fields[n + 5], fields[n + 6] = "updated_at", now
        redis.call("HSET", prefix .. "job:" .. job_id, unpack(fields))
        redis.call("XADD", events, "MAXLEN", "~", maxlen, "*",
                   "job", job_id, "from", "", "to", "queued", "at", now, "provider", h[7])
        queued[#queued + 1], queued[#queued + 2] = now, job_id
        due[#due + 1], due[#due + 2] = math.max(now_n, tonumber(h[10]) or 0), job_id
        local queue = h[3]
        if queue ~= "" then
            if not msg_ids[queue] then
                queues[#queues + 1] = queue
                msg_fields[queue], msg_ids[queue] = {}, {}
            end
            local f, ids = msg_fields[queue], msg_ids[queue]
            f[#f + 1], f[#f + 2] = h[4], string.sub(arg, pos)
            ids[#ids + 1] = h[4]
        end
        out[#out + 1] = "+" .. job_id
    end
end

if #payloads > 0 then
    redis.call("MSET", unpack(payloads))
end
if #queued > 0 then
    redis.call("ZADD", prefix .. "jobs:queued", unpack(queued))
    redis.call("ZADD", prefix .. "due", unpack(due))
end
for _, queue in ipairs(queues) do
    redis.call("HSET", queue .. ".msgs", unpack(msg_fields[queue]))
    redis.call("RPUSH", queue, unpack(msg_ids[queue]))
end
return table.concat(out, ",")
