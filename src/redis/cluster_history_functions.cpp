#include "ssegw/redis/cluster_history_functions.hpp"


#include "ssegw/redis/history_functions.hpp"
#include "ssegw/core/text.hpp"
#include "ssegw/redis/lua_library.hpp"

namespace ssegw {

namespace {

// Numbers are Lua doubles: epochs (milliseconds, ~2^41) and sequences stay far below 2^53.
constexpr std::string_view library_body = R"LUA(
local function valid_channel(ch)
  if ch == 'broadcast' then return true end
  if #ch > 5 and string.sub(ch, 1, 5) == 'user:' then return true end
  if #ch > 6 and string.sub(ch, 1, 6) == 'topic:' then return true end
  return false
end

-- Only the full key: during a slot migration Redis routes a call by its declared key, and a
-- bare 'user:42' never exists, so it would run on the importing node and start a second history.
local function checked_key(key)
  if key and #key > #PREFIX + 2 and string.sub(key, 1, #PREFIX + 1) == PREFIX .. '{'
      and string.sub(key, -1) == '}' and valid_channel(string.sub(key, #PREFIX + 2, -2)) then
    return key
  end
  return nil
end

local DIGITS = '0123456789abcdefghijklmnopqrstuvwxyz'
local function b36(n)
  if n == 0 then return '0' end
  local s = ''
  while n > 0 do
    local d = n % 36
    s = string.sub(DIGITS, d + 1, d + 1) .. s
    n = (n - d) / 36
  end
  return s
end

local function split_id(id)
  local e, s = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(e), tonumber(s)
end

local function field(fields, name)
  for i = 1, #fields, 2 do
    if fields[i] == name then return fields[i + 1] end
  end
  return nil
end

-- Names this server process. A library-level local is per process and not replicated: a
-- promoted replica, a restarted server or a node a slot migrated to starts without it, and its
-- first write to a channel opens a new epoch there.
local token = nil
local function writer()
  if not token then
    local t = redis.call('TIME')
    token = t[1] .. '.' .. t[2]
  end
  return token
end

local function publish(keys, args)
  local key, payload = checked_key(keys[1]), args[1]
  if not key then
    return redis.error_reply('ERR sse_publish: in cluster mode the key must be ' .. PREFIX .. '{<channel>}: user:<id>, topic:<name> or broadcast in braces')
  end
  if not payload then
    return redis.error_reply('ERR sse_publish: usage FCALL sse_publish 1 ' .. PREFIX .. '{<channel>} <payload>')
  end
  local last = redis.call('XREVRANGE', key, '+', '-', 'COUNT', 1)[1]
  local t = redis.call('TIME')
  local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local me = writer()
  local fields = { 'w', me, 't', t[1], 'p', payload }
  local e, s = 0, 0
  if last then e, s = split_id(last[1]) end
  local ne, ns
  if last and field(last[2], 'w') == me then
    ne, ns = e, s + 1
  else
    ne, ns = math.max(now_ms, e + 1), 1
    if last then
      fields[#fields + 1] = 'pe'
      fields[#fields + 1] = string.format('%d', e)
      fields[#fields + 1] = 'ps'
      fields[#fields + 1] = string.format('%d', s)
    end
  end
  local id = string.format('%d-%d', ne, ns)
  redis.call('XADD', key, id, unpack(fields))
  local excess = redis.call('XLEN', key) - MAXLEN
  if excess > 0 then
    local old = redis.call('XRANGE', key, '-', '+', 'COUNT', excess)
    local ids = {}
    for i, entry in ipairs(old) do ids[i] = entry[1] end
    redis.call('XDEL', key, unpack(ids))
  end
  redis.call('EXPIRE', key, TTL)
  redis.call('SPUBLISH', key, '\30' .. '2:' .. b36(ne) .. '.' .. b36(ns) .. '\n' .. payload)
  return id
end

-- Reply: { tip_epoch, tip_seq, truncated(0|1), then per entry: epoch, seq, t, payload }.
-- KEYS: the stream, and optionally its loss notes (a hash in the same slot: epoch -> the highest
-- sequence some gateway routed in that epoch, recorded when the stream turned out to lack it).
-- ARGV: [epoch seq ['note']] of the position in this channel; none: only the tip.
-- After (E, s) the next event is (E, s + 1), or the start of a new epoch that names (E, s') as
-- its predecessor with s' <= s. A failover can promote a replica that missed events gateways had
-- already delivered: every epoch start (pe, ps) in what is returned, first or further in, is
-- checked against the notes of pe: a gateway that routed beyond ps there means events are gone
-- that the reader did not have. Anything else after a position means events are gone too.
-- 'note': the caller (a gateway catching a channel up from what it routed) records its position
-- when this stream lacks it, before or after the new writer opened its epoch.
local function note_routed(lost_key, fe, fs)
  local field_e = string.format('%d', fe)
  if fs > tonumber(redis.call('HGET', lost_key, field_e) or '0') then
    redis.call('HSET', lost_key, field_e, string.format('%d', fs))
    redis.call('EXPIRE', lost_key, TTL)
  end
end

local function history(keys, args)
  local key = checked_key(keys[1])
  local lost_key = keys[2]
  if not key then
    return redis.error_reply('ERR sse_history: the key must be ' .. PREFIX .. '{<channel>}')
  end
  local last = redis.call('XREVRANGE', key, '+', '-', 'COUNT', 1)[1]
  local te, ts = 0, 0
  if last then te, ts = split_id(last[1]) end
  local out = { string.format('%d', te), string.format('%d', ts), 0 }
  if #args < 2 then return out end
  local fe, fs = tonumber(args[1]), tonumber(args[2])
  if not fe or not fs then
    return redis.error_reply('ERR sse_history: usage FCALL sse_history 1 <key> [<epoch> <seq>]')
  end
  local entries
  if fe == 0 and fs == 0 then
    -- The channel had no event when the client joined: it is owed everything, complete only if
    -- the stream still starts at its first event.
    entries = redis.call('XRANGE', key, '-', '+')
    local first = entries[1]
    if first then
      local _, s1 = split_id(first[1])
      if s1 ~= 1 or field(first[2], 'pe') then out[3] = 1 end
    end
  else
    entries = redis.call('XRANGE', key, string.format('(%d-%d', fe, fs), '+')
    local first = entries[1]
    if first then
      local e1, s1 = split_id(first[1])
      local follows = (e1 == fe and s1 == fs + 1)
      if not follows and s1 == 1 then
        local pe, ps = tonumber(field(first[2], 'pe')), tonumber(field(first[2], 'ps'))
        follows = pe == fe and ps ~= nil and ps <= fs
        if follows and ps < fs and args[3] == 'note' and lost_key then
          note_routed(lost_key, fe, fs)
        end
      end
      if not follows then out[3] = 1 end
    elseif not last then
      -- Gone altogether: expired, or lost with a failed primary.
      out[3] = 1
    elseif te == fe and ts < fs and args[3] == 'note' and lost_key then
      -- A promoted replica that has not written yet: its epoch will name (fe, ts) as its
      -- predecessor, and what the caller routed after ts is gone.
      note_routed(lost_key, fe, fs)
    end
  end
  for i, entry in ipairs(entries) do
    local e, s = split_id(entry[1])
    if s == 1 and lost_key then
      local pe, ps = tonumber(field(entry[2], 'pe')), tonumber(field(entry[2], 'ps'))
      if pe and ps then
        -- The reader has its predecessor's events up to ps (up to its position, for the first
        -- entry after it); a gateway that routed more of that epoch means they are gone.
        local had = ps
        if i == 1 and pe == fe then had = math.max(ps, fs) end
        if tonumber(redis.call('HGET', lost_key, string.format('%d', pe)) or '0') > had then
          out[3] = 1
        end
      end
    end
    out[#out + 1] = string.format('%d', e)
    out[#out + 1] = string.format('%d', s)
    out[#out + 1] = field(entry[2], 't') or '0'
    out[#out + 1] = field(entry[2], 'p') or ''
  end
  return out
end

redis.register_function('sse_publish', publish)
redis.register_function('sse_history', history)
)LUA";

channel_history failed(std::string why) {
    channel_history h;
    h.error = std::move(why);
    return h;
}

} // namespace

std::string cluster_history_library_source(std::string_view prefix, std::uint32_t max_len,
                                           std::uint32_t ttl_seconds) {
    return lua_library_source(cluster_history_library_name, prefix, max_len, ttl_seconds, library_body);
}

std::vector<std::string> cluster_publish_command(std::string_view prefix, std::string_view channel,
                                                 std::string payload) {
    return {"FCALL", "sse_publish", "1", function_key(prefix, channel), std::move(payload)};
}

std::optional<channel_position> parse_cluster_publish_reply(const reply& r) {
    if (r.type != reply::kind::string) return std::nullopt;
    const std::string_view id(r.str);
    const auto dash = id.find('-');
    channel_position at;
    if (dash == std::string_view::npos || !parse_whole_number(id.substr(0, dash), at.epoch) ||
        !parse_whole_number(id.substr(dash + 1), at.seq))
        return std::nullopt;
    return at;
}

std::vector<std::string> cluster_history_command(std::string_view prefix, std::string_view channel,
                                                 const std::optional<channel_position>& from,
                                                 bool note_routed) {
    auto key = function_key(prefix, channel);
    auto lost = key + ":lost"; // same hash tag, same slot
    std::vector<std::string> cmd{"FCALL", "sse_history", "2", std::move(key), std::move(lost)};
    if (from) {
        cmd.push_back(std::to_string(from->epoch));
        cmd.push_back(std::to_string(from->seq));
        if (note_routed) cmd.emplace_back("note");
    }
    return cmd;
}

channel_history parse_cluster_history_reply(const reply& r, std::string_view channel) {
    if (r.type == reply::kind::error) return failed(r.str.empty() ? "redis error" : r.str);
    if (r.type != reply::kind::array || r.elements.size() < 3 || (r.elements.size() - 3) % 4 != 0)
        return failed("unexpected sse_history reply");
    const auto& el = r.elements;
    channel_history out;
    if (el[0].type != reply::kind::string || el[1].type != reply::kind::string ||
        el[2].type != reply::kind::integer || !parse_whole_number(el[0].str, out.tip.epoch) ||
        !parse_whole_number(el[1].str, out.tip.seq))
        return failed("unexpected sse_history tip");
    out.truncated = el[2].integer != 0;
    out.entries.reserve((el.size() - 3) / 4);
    for (std::size_t i = 3; i < el.size(); i += 4) {
        history_entry e;
        e.channel.assign(channel);
        if (!parse_whole_number(el[i].str, e.at.epoch) || !parse_whole_number(el[i + 1].str, e.at.seq) ||
            !parse_whole_number(el[i + 2].str, e.position.time))
            return failed("unexpected sse_history entry");
        e.position.seq = e.at.seq;
        e.payload = el[i + 3].str;
        out.entries.push_back(std::move(e));
    }
    out.ok = true;
    return out;
}

} // namespace ssegw
