#include "ssegw/redis/history_functions.hpp"

#include <algorithm>

#include "ssegw/core/text.hpp"
#include "ssegw/redis/lua_library.hpp"

namespace ssegw {

namespace {

constexpr std::string_view library_body = R"LUA(
local function valid_channel(ch)
  if ch == 'broadcast' then return true end
  if #ch > 5 and string.sub(ch, 1, 5) == 'user:' then return true end
  if #ch > 6 and string.sub(ch, 1, 6) == 'topic:' then return true end
  return false
end

local function new_epoch_id(old)
  local t = redis.call('TIME')
  local e = string.format('%x%05x', tonumber(t[1]), tonumber(t[2]))
  if e == old then e = e .. '0' end
  return e
end

-- The epoch names one run of the sequence counter. Reads use the current one (creating it when
-- Redis lost its data: positions handed out before must not be mistaken for new ones).
local function epoch()
  local key = PREFIX .. 'epoch'
  local e = redis.call('GET', key)
  if not e then
    e = new_epoch_id(nil)
    redis.call('SET', key, e)
  end
  return e
end

-- Set by this process's first sse_publish. A library-level local is per process and is not
-- replicated: a promoted replica (which received the effects of FCALLs, never ran one), a
-- restarted server and a reloaded library all start without it. Their first write opens a new
-- epoch, so that a sequence number the previous writer handed out (and maybe lost, with
-- asynchronous replication) is never handed out again under the same epoch. The new epoch
-- continues the numbering: epochs[new] = '<previous epoch> <sequence at the switch>'.
local writer = nil

local function writing_epoch()
  local key = PREFIX .. 'epoch'
  local e = redis.call('GET', key)
  if e and writer == e then return e end
  local fresh = new_epoch_id(e)
  if e then
    local base = redis.call('GET', PREFIX .. 'seq') or '0'
    redis.call('HSET', PREFIX .. 'epochs', fresh, e .. ' ' .. base)
  end
  redis.call('SET', key, fresh)
  writer = fresh
  return fresh
end

-- How a position of epoch `from` continues into the current epoch `cur`: the sequence up to
-- which both name the same history (the lowest switch base on the way), and whether events
-- were lost in a switch on the way (recorded by gateways in <prefix>lost). nil when `from`
-- is not an ancestor of `cur` within 32 switches.
local function continuation(from, cur)
  local x, upto, lost = cur, nil, false
  for _ = 1, 32 do
    local link = redis.call('HGET', PREFIX .. 'epochs', x)
    if not link then return nil end
    local prev, base = string.match(link, '^(%S+) (%d+)$')
    base = tonumber(base)
    if upto == nil or base < upto then upto = base end
    local l = tonumber(redis.call('HGET', PREFIX .. 'lost', x) or '0')
    if l > base then lost = true end
    if prev == from then return upto, lost end
    x = prev
  end
  return nil
end

-- A function's key: '<prefix>{<channel>}' (what the gateway sends: it lies under the prefix, so an
-- ACL limited to ~<prefix>* allows it, and in the channel's hash slot), or the bare channel name
-- older publishers send. Either names the same channel.
local function channel_of(key)
  if key and #key > #PREFIX + 2 and string.sub(key, 1, #PREFIX + 1) == PREFIX .. '{'
      and string.sub(key, -1) == '}' then
    return string.sub(key, #PREFIX + 2, -2)
  end
  return key
end

local function seq_of(id)
  return tonumber(string.match(id, '^(%d+)'))
end

local function publish(keys, args)
  local ch, payload = channel_of(keys[1]), args[1]
  if not ch or not valid_channel(ch) then
    return redis.error_reply('ERR sse_publish: the key must be ' .. PREFIX .. '{<channel>} or the bare channel: user:<id>, topic:<name> or broadcast')
  end
  if not payload then
    return redis.error_reply('ERR sse_publish: usage FCALL sse_publish 1 <channel> <payload>')
  end
  local e = writing_epoch()
  local seq = redis.call('INCR', PREFIX .. 'seq')
  local now = tonumber(redis.call('TIME')[1])
  local key = PREFIX .. 'history:' .. ch
  redis.call('XADD', key, string.format('%d-0', seq), 't', string.format('%d', now), 'p', payload)
  -- Trim with XDEL rather than XADD MAXLEN: XDEL records max-deleted-entry-id, which is how
  -- sse_history tells a client exactly whether anything after its position was trimmed.
  local excess = redis.call('XLEN', key) - MAXLEN
  if excess > 0 then
    local old = redis.call('XRANGE', key, '-', '+', 'COUNT', excess)
    local ids = {}
    for i, entry in ipairs(old) do ids[i] = entry[1] end
    redis.call('XDEL', key, unpack(ids))
  end
  redis.call('EXPIRE', key, TTL)
  local pos = e .. '.' .. string.format('%d', seq) .. '.' .. string.format('%d', now)
  redis.call('PUBLISH', PREFIX .. ch, '\30' .. pos .. '\n' .. payload)
  return pos
end

-- Reply: { epoch, tip_seq, now, status, then per channel: truncated(0|1), {seq, t, p, ...} }
-- status: 0 the position is known, 1 unknown (nothing replayable), 2 known but events after it
-- were lost in a failover (on channels nobody can name any more): replay what exists.
local function history(keys, args)
  local e = epoch()
  local cur = tonumber(redis.call('GET', PREFIX .. 'seq') or '0')
  local now = tonumber(redis.call('TIME')[1])
  local out = { e, string.format('%d', cur), string.format('%d', now), 0 }
  if #args == 0 then return out end
  local from_epoch, from_seq, from_time = args[1], tonumber(args[2]), tonumber(args[3])
  if from_seq == nil or from_time == nil then
    out[4] = 1
    return out
  end
  if from_epoch ~= e then
    -- A position from before an epoch switch: events up to the switch are common to both.
    local upto, lost = continuation(from_epoch, e)
    if upto == nil then
      out[4] = 1
      return out
    end
    if lost or from_seq > upto then out[4] = 2 end
    if from_seq > upto then from_seq = upto end
  elseif from_seq > cur then
    out[4] = 1
    return out
  end
  -- Older than the time-to-live: a missing stream may have expired with events in it.
  local aged = (now - from_time) >= TTL
  for _, k in ipairs(keys) do
    local ch = channel_of(k)
    local key = PREFIX .. 'history:' .. ch
    local truncated, flat = 0, {}
    if redis.call('EXISTS', key) == 1 then
      local info = redis.call('XINFO', 'STREAM', key)
      local max_deleted, first = '0-0', nil
      for i = 1, #info, 2 do
        local k = info[i]
        if k == 'max-deleted-entry-id' then max_deleted = info[i + 1]
        elseif k == 'first-entry' then first = info[i + 1] end
      end
      -- Trimmed: something newer than the position was deleted.
      if seq_of(max_deleted) > from_seq then truncated = 1 end
      -- Expired and recreated: only possible when the stream's first entry came a whole TTL
      -- after the position (a stream lives TTL past its last event).
      if first and seq_of(first[1]) > from_seq then
        local fields, first_time = first[2], nil
        for i = 1, #fields, 2 do
          if fields[i] == 't' then first_time = tonumber(fields[i + 1]) end
        end
        if first_time and first_time - from_time >= TTL then truncated = 1 end
      end
      local entries = redis.call('XRANGE', key, string.format('(%d-0', from_seq), '+')
      for _, entry in ipairs(entries) do
        local fields, t, p = entry[2], '0', ''
        for i = 1, #fields, 2 do
          if fields[i] == 't' then t = fields[i + 1] elseif fields[i] == 'p' then p = fields[i + 1] end
        end
        flat[#flat + 1] = string.format('%d', seq_of(entry[1]))
        flat[#flat + 1] = t
        flat[#flat + 1] = p
      end
    elseif aged then
      truncated = 1
    end
    out[#out + 1] = truncated
    out[#out + 1] = flat
  end
  return out
end

-- A gateway that routed events of epoch `old` up to `routed` saw the epoch change to `new`: if it
-- routed more than the switch kept, those events are lost, and every position before them must
-- be told so. A switch nobody recorded (Redis lost everything) is recorded as starting from 0.
-- ARGV: old, routed, new.
local function note_epoch(keys, args)
  local old, routed, new = args[1], tonumber(args[2]), args[3]
  if not old or not routed or not new or old == new then
    return redis.error_reply('ERR sse_note_epoch: usage FCALL sse_note_epoch 0 <old> <routed> <new>')
  end
  if not redis.call('HGET', PREFIX .. 'epochs', new) then
    redis.call('HSET', PREFIX .. 'epochs', new, old .. ' 0')
  end
  local lost = tonumber(redis.call('HGET', PREFIX .. 'lost', new) or '0')
  if routed > lost then redis.call('HSET', PREFIX .. 'lost', new, string.format('%d', routed)) end
  return 1
end

redis.register_function('sse_publish', publish)
redis.register_function('sse_history', history)
redis.register_function('sse_note_epoch', note_epoch)
)LUA";

history_read failed(std::string why) {
    history_read r;
    r.error = std::move(why);
    return r;
}

} // namespace

std::string history_library_source(std::string_view prefix, std::uint32_t max_len,
                                   std::uint32_t ttl_seconds) {
    return lua_library_source(history_library_name, prefix, max_len, ttl_seconds, library_body);
}

std::string function_key(std::string_view prefix, std::string_view channel) {
    std::string key(prefix);
    key += '{';
    key += channel;
    key += '}';
    return key;
}

std::vector<std::string> publish_command(std::string_view prefix, std::string_view channel,
                                         std::string payload) {
    return {"FCALL", "sse_publish", "1", function_key(prefix, channel), std::move(payload)};
}

std::vector<std::string> history_command(std::string_view prefix,
                                         const std::vector<std::string>& channels,
                                         const std::optional<stream_position>& from) {
    std::vector<std::string> cmd;
    cmd.reserve(3 + channels.size() + 3);
    cmd.emplace_back("FCALL");
    cmd.emplace_back("sse_history");
    cmd.push_back(std::to_string(channels.size()));
    for (const auto& ch : channels) cmd.push_back(function_key(prefix, ch));
    if (from) {
        cmd.push_back(from->epoch);
        cmd.push_back(std::to_string(from->seq));
        cmd.push_back(std::to_string(from->time));
    }
    return cmd;
}

std::vector<std::string> note_epoch_command(const stream_position& routed,
                                            std::string_view new_epoch) {
    return {"FCALL",      "sse_note_epoch",           "0",
            routed.epoch, std::to_string(routed.seq), std::string(new_epoch)};
}

history_read parse_history_reply(const reply& r, const std::vector<std::string>& channels) {
    if (r.type == reply::kind::error) return failed(r.str.empty() ? "redis error" : r.str);
    if (r.type != reply::kind::array || r.elements.size() < 4)
        return failed("unexpected sse_history reply");
    const auto& el = r.elements;
    history_read out;
    if (el[0].type != reply::kind::string || el[1].type != reply::kind::string ||
        el[2].type != reply::kind::string || el[3].type != reply::kind::integer)
        return failed("unexpected sse_history reply header");
    out.tip.epoch = el[0].str;
    if (!parse_whole_number(el[1].str, out.tip.seq) || !parse_whole_number(el[2].str, out.tip.time))
        return failed("unexpected sse_history tip");
    out.unknown_position = el[3].integer == 1;
    out.lost = el[3].integer == 2;
    // Unknown positions and fresh reads (no position given) carry no channel blocks.
    if (out.unknown_position || el.size() == 4) {
        out.ok = true;
        return out;
    }
    if (el.size() != 4 + 2 * channels.size()) return failed("sse_history reply has wrong length");
    for (std::size_t i = 0; i < channels.size(); ++i) {
        const auto& flag = el[4 + 2 * i];
        const auto& list = el[5 + 2 * i];
        if (flag.type != reply::kind::integer || list.type != reply::kind::array ||
            list.elements.size() % 3 != 0)
            return failed("unexpected sse_history channel block");
        if (flag.integer != 0) out.truncated.push_back(channels[i]);
        for (std::size_t j = 0; j < list.elements.size(); j += 3) {
            history_entry e;
            e.channel = channels[i];
            e.position.epoch = out.tip.epoch;
            if (!parse_whole_number(list.elements[j].str, e.position.seq) ||
                !parse_whole_number(list.elements[j + 1].str, e.position.time))
                return failed("unexpected sse_history entry");
            e.payload = list.elements[j + 2].str;
            out.entries.push_back(std::move(e));
        }
    }
    std::stable_sort(out.entries.begin(), out.entries.end(),
                     [](const history_entry& a, const history_entry& b) {
                         return a.position.seq < b.position.seq;
                     });
    out.ok = true;
    return out;
}

bool is_missing_function_error(const reply& r) {
    return r.type == reply::kind::error && (r.str.find("Function not found") != std::string::npos ||
                                            r.str.find("function not found") != std::string::npos);
}

bool installed_code_matches(const reply& function_list, std::string_view source) {
    if (function_list.type != reply::kind::array) return false;
    // One entry per library whose name matches the pattern (a glob: other names may match);
    // each is a flat list of field, value pairs (RESP2).
    for (const auto& library : function_list.elements) {
        if (library.type != reply::kind::array) continue;
        const std::string* name = nullptr;
        const std::string* code = nullptr;
        for (std::size_t i = 0; i + 1 < library.elements.size(); i += 2) {
            const auto& field = library.elements[i].str;
            if (field == "library_name") name = &library.elements[i + 1].str;
            if (field == "library_code") code = &library.elements[i + 1].str;
        }
        if (name && code && *name == history_library_name && *code == source) return true;
    }
    return false;
}

} // namespace ssegw
