#include "ssegw/redis/presence_functions.hpp"

namespace ssegw {

namespace {

// Every loop below is bounded: by the arguments of the call, by the instances of one user, or
// by an explicit LIMIT/COUNT, so no call blocks Redis for long whatever the data holds.
constexpr std::string_view library_source = R"LUA(#!lua name=ssegw_presence_v1
local SUFFIX = 'presence'

local function base_of(stream)
  if #stream <= #SUFFIX or string.sub(stream, -#SUFFIX) ~= SUFFIX then
    error('ssegw presence: the key must be <prefix>presence')
  end
  return string.sub(stream, 1, #stream - #SUFFIX) .. '{' .. stream .. '}:'
end

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Streams of a user on instances whose records are still alive, and how many instances.
local function live(b, user, now)
  local h = redis.call('HGETALL', b .. 'u:' .. user)
  local n, k = 0, 0
  for i = 1, #h, 2 do
    local d = redis.call('ZSCORE', b .. 'instances', h[i])
    if d and tonumber(d) >= now then
      n = n + tonumber(h[i + 1])
      k = k + 1
    end
  end
  return n, k
end

local function emit(stream, max_len, kind, user, now)
  redis.call('XADD', stream, 'MAXLEN', '~', max_len, '*', 'type', kind, 'user', user, 'at', now)
end

-- After a user's counts changed: online at once when it has streams and was not online; when
-- it has none, its offline falls due after the grace (unless already due earlier).
local function settle(b, stream, user, now, grace, max_len, out)
  local n = live(b, user, now)
  if n > 0 then
    redis.call('ZREM', b .. 'pending', user)
    if redis.call('SADD', b .. 'online', user) == 1 then
      emit(stream, max_len, 'online', user, now)
      out[2] = out[2] + 1
    end
  elseif redis.call('SISMEMBER', b .. 'online', user) == 1 then
    redis.call('ZADD', b .. 'pending', 'NX', now + grace, user)
  end
end

-- Instances whose deadline passed: their counts are removed (a bounded number per call; the
-- instance stays listed until all are gone) and their users settled with the usual grace: an
-- instance that only lost Redis for longer than its TTL (a failover, an outage all instances
-- saw) sends its counts again on its next heartbeat, and its users must not flap offline.
local function sweep(b, stream, now, grace, max_len, out)
  local dead = redis.call('ZRANGEBYSCORE', b .. 'instances', '-inf', '(' .. now, 'LIMIT', 0, 4)
  for _, inst in ipairs(dead) do
    local ik = b .. 'i:' .. inst
    local scan = redis.call('HSCAN', ik, '0', 'COUNT', 250)
    local fields = scan[2]
    for i = 1, #fields, 2 do
      redis.call('HDEL', b .. 'u:' .. fields[i], inst)
      redis.call('HDEL', ik, fields[i])
      settle(b, stream, fields[i], now, grace, max_len, out)
    end
    if redis.call('EXISTS', ik) == 0 then
      redis.call('ZREM', b .. 'instances', inst)
      out[4] = out[4] + 1
    else
      out[5] = 1
    end
  end
  if #dead == 4 then out[5] = 1 end
  local due = redis.call('ZRANGEBYSCORE', b .. 'pending', '-inf', now, 'LIMIT', 0, 250)
  for _, user in ipairs(due) do
    redis.call('ZREM', b .. 'pending', user)
    if live(b, user, now) == 0 and redis.call('SREM', b .. 'online', user) == 1 then
      emit(stream, max_len, 'offline', user, now)
      out[3] = out[3] + 1
    end
  end
  if #due == 250 then out[5] = 1 end
end

-- KEYS[1] = <prefix>presence; ARGV = instance, ttl_ms, grace_ms, max_len, reset, then
-- (user, count) pairs: the instance's absolute count of streams of each user named.
-- Returns {was_known, onlines written, offlines written, dead instances swept, more}: more = 1
-- when the sweep stopped at its bound (call again soon rather than at the next heartbeat).
local function apply(keys, args)
  local stream = keys[1]
  local b = base_of(stream)
  local inst, ttl, grace, max_len = args[1], tonumber(args[2]), tonumber(args[3]), tonumber(args[4])
  if not inst or inst == '' or not ttl or not grace or not max_len or #args % 2 ~= 1 then
    return redis.error_reply('ERR ssegw_presence_apply: instance ttl_ms grace_ms max_len reset [user count]...')
  end
  local now = now_ms()
  local out = {0, 0, 0, 0, 0}
  local deadline = redis.call('ZSCORE', b .. 'instances', inst)
  if deadline and tonumber(deadline) >= now then out[1] = 1 end
  redis.call('ZADD', b .. 'instances', now + ttl, inst)
  local ik = b .. 'i:' .. inst
  local touched, order = {}, {}
  local function touch(user)
    if not touched[user] then
      touched[user] = true
      order[#order + 1] = user
    end
  end
  if args[5] == '1' then
    local old = redis.call('HGETALL', ik)
    for i = 1, #old, 2 do
      redis.call('HDEL', b .. 'u:' .. old[i], inst)
      touch(old[i])
    end
    redis.call('DEL', ik)
  end
  for i = 6, #args, 2 do
    local user, count = args[i], tonumber(args[i + 1])
    if not count then return redis.error_reply('ERR ssegw_presence_apply: count must be a number') end
    if count > 0 then
      redis.call('HSET', b .. 'u:' .. user, inst, count)
      redis.call('HSET', ik, user, count)
    else
      redis.call('HDEL', b .. 'u:' .. user, inst)
      redis.call('HDEL', ik, user)
    end
    touch(user)
  end
  for _, user in ipairs(order) do settle(b, stream, user, now, grace, max_len, out) end
  sweep(b, stream, now, grace, max_len, out)
  return out
end

-- KEYS[1] = <prefix>presence; ARGV = users. Returns {connections, instances} per user,
-- counting only instances whose records are alive.
local function get(keys, args)
  local b = base_of(keys[1])
  local now = now_ms()
  local out = {}
  for i, user in ipairs(args) do
    local n, k = live(b, user, now)
    out[i] = {n, k}
  end
  return out
end

-- KEYS[1] = <prefix>lifecycle; ARGV = max_len, instance, then (type, user, topics, reason,
-- duration_s) per stream opened or closed.
local function lifecycle_add(keys, args)
  local max_len, inst = tonumber(args[1]), args[2]
  if not max_len or not inst or (#args - 2) % 5 ~= 0 then
    return redis.error_reply('ERR ssegw_lifecycle_add: max_len instance [type user topics reason duration_s]...')
  end
  local now = now_ms()
  for i = 3, #args, 5 do
    local entry = {'type', args[i], 'user', args[i + 1], 'instance', inst, 'topics', args[i + 2],
                   'at', now}
    if args[i] == 'closed' then
      entry[#entry + 1] = 'reason'
      entry[#entry + 1] = args[i + 3]
      entry[#entry + 1] = 'duration_s'
      entry[#entry + 1] = args[i + 4]
    end
    redis.call('XADD', keys[1], 'MAXLEN', '~', max_len, '*', unpack(entry))
  end
  return (#args - 2) / 5
end

redis.register_function('ssegw_presence_apply', apply)
redis.register_function{function_name = 'ssegw_presence_get', callback = get,
                        flags = {'no-writes'}}
redis.register_function('ssegw_lifecycle_add', lifecycle_add)
)LUA";

bool to_u64(const reply& r, std::uint64_t& out) {
    if (r.type != reply::kind::integer || r.integer < 0) return false;
    out = static_cast<std::uint64_t>(r.integer);
    return true;
}

} // namespace

std::string_view presence_library_source() { return library_source; }

std::string presence_stream_key(std::string_view prefix) {
    return std::string(prefix) + "presence";
}

std::string lifecycle_stream_key(std::string_view prefix) {
    return std::string(prefix) + "lifecycle";
}

std::vector<std::string>
presence_apply_command(std::string_view prefix, const presence_apply_args& a,
                       const std::vector<std::pair<std::string, std::uint32_t>>& counts) {
    std::vector<std::string> cmd;
    cmd.reserve(9 + 2 * counts.size());
    cmd.insert(cmd.end(), {"FCALL", "ssegw_presence_apply", "1", presence_stream_key(prefix),
                           a.instance, std::to_string(a.ttl_ms), std::to_string(a.grace_ms),
                           std::to_string(a.max_len), a.reset ? "1" : "0"});
    for (const auto& [user, count] : counts) {
        cmd.push_back(user);
        cmd.push_back(std::to_string(count));
    }
    return cmd;
}

std::optional<presence_apply_result> parse_presence_apply_reply(const reply& r) {
    if (r.type != reply::kind::array || r.elements.size() != 5) return std::nullopt;
    presence_apply_result out;
    std::uint64_t known = 0;
    std::uint64_t more = 0;
    if (!to_u64(r.elements[0], known) || !to_u64(r.elements[1], out.online) ||
        !to_u64(r.elements[2], out.offline) || !to_u64(r.elements[3], out.instances_swept) ||
        !to_u64(r.elements[4], more))
        return std::nullopt;
    out.was_known = known != 0;
    out.more = more != 0;
    return out;
}

std::vector<std::string> presence_get_command(std::string_view prefix,
                                              const std::vector<std::string>& users) {
    std::vector<std::string> cmd = {"FCALL_RO", "ssegw_presence_get", "1",
                                    presence_stream_key(prefix)};
    cmd.insert(cmd.end(), users.begin(), users.end());
    return cmd;
}

std::optional<std::vector<user_presence>> parse_presence_get_reply(const reply& r,
                                                                   std::size_t users) {
    // Lua's empty table comes back as an empty array: right for zero users only.
    if (r.type != reply::kind::array || r.elements.size() != users) return std::nullopt;
    std::vector<user_presence> out;
    out.reserve(users);
    for (const auto& e : r.elements) {
        user_presence p;
        if (e.type != reply::kind::array || e.elements.size() != 2 ||
            !to_u64(e.elements[0], p.connections) || !to_u64(e.elements[1], p.instances))
            return std::nullopt;
        out.push_back(p);
    }
    return out;
}

std::vector<std::string> lifecycle_add_command(std::string_view prefix, std::uint32_t max_len,
                                               std::string_view instance,
                                               const std::vector<lifecycle_entry>& entries) {
    std::vector<std::string> cmd = {"FCALL",
                                    "ssegw_lifecycle_add",
                                    "1",
                                    lifecycle_stream_key(prefix),
                                    std::to_string(max_len),
                                    std::string(instance)};
    cmd.reserve(cmd.size() + 5 * entries.size());
    for (const auto& e : entries) {
        cmd.push_back(e.opened ? "opened" : "closed");
        cmd.push_back(e.user);
        cmd.push_back(e.topics);
        cmd.push_back(e.reason);
        cmd.push_back(std::to_string(e.duration_seconds));
    }
    return cmd;
}

std::vector<std::string> presence_load_command() {
    return {"FUNCTION", "LOAD", "REPLACE", std::string(library_source)};
}

} // namespace ssegw
