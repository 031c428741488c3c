-- composable-rust-redis: commits one unit of work of a RedisProjectionStore.
-- Redis runs a script atomically: no other client's command runs while it
-- does, and the client going away after sending it changes nothing. See
-- commit.rs for the protocol; in short:
--
-- ARGV[1] = the number of operations, then per operation: its kind
--   'W' a read-model write (args[1] = the command),
--   'M' an apply_once marker (args = the marker's new value, the position),
--   'B' bookkeeping: a checkpoint or dead letter (args[1] = the command),
-- its section (the apply_once position its writes belong to; '0' = none),
-- its number of keys, its number of arguments, then the arguments.
-- KEYS = every operation's keys, in order.
--
-- The operations run in order. At the first one that fails, the script
-- stops (nothing after it runs, so no checkpoint moves and no dead letter
-- changes), puts every marker of a section that was not applied in full
-- back to its value before, with that section's position added to the
-- marker's list of positions not applied, and returns
-- {index of the failed operation (from 1), the error, markers put back}.
-- It returns {0, '', 0} when every operation was applied.

local function failed(reply)
  return type(reply) == 'table' and reply.err ~= nil
end

local ops = {}
local count = tonumber(ARGV[1])
local a, k = 2, 1
for i = 1, count do
  local op = { kind = ARGV[a], section = ARGV[a + 1], keys = {}, args = {} }
  local nkeys, nargs = tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  a = a + 4
  for j = 1, nkeys do
    op.keys[j] = KEYS[k]
    k = k + 1
  end
  for j = 1, nargs do
    op.args[j] = ARGV[a]
    a = a + 1
  end
  ops[i] = op
end

-- The store's own hashes are checked before anything is written, so the
-- bookkeeping at the end cannot fail half-way.
for i, op in ipairs(ops) do
  if op.kind == 'B' then
    local kind = redis.call('TYPE', op.keys[1])['ok']
    if kind ~= 'hash' and kind ~= 'none' then
      return { i, 'WRONGTYPE ' .. op.keys[1] .. ' holds a ' .. kind ..
        ', not the hash the store keeps there', 0 }
    end
  end
end

local marked = {}
local failure, message = 0, ''
for i, op in ipairs(ops) do
  if op.kind == 'M' then
    local key = op.keys[1]
    local before = redis.pcall('GET', key)
    if failed(before) then
      failure, message = i, before.err
      break
    end
    local ttl = redis.call('PTTL', key)
    local reply = redis.pcall('SET', key, op.args[1])
    if failed(reply) then
      failure, message = i, reply.err
      break
    end
    marked[#marked + 1] = { key = key, before = before, ttl = ttl,
      position = op.args[2], section = op.section }
  else
    local call = { op.args[1] }
    for _, key in ipairs(op.keys) do
      call[#call + 1] = key
    end
    for j = 2, #op.args do
      call[#call + 1] = op.args[j]
    end
    local reply = redis.pcall(unpack(call))
    if failed(reply) then
      failure, message = i, reply.err
      break
    end
  end
end
if failure == 0 then
  return { 0, '', 0 }
end

-- Sections not applied in full: the failed operation's, and every one
-- with an operation after it. A failed bookkeeping operation leaves them
-- all open.
local open, all = {}, ops[failure].kind == 'B'
for i = failure, count do
  if ops[i].kind ~= 'B' then
    open[ops[i].section] = true
  end
end

-- Per marker key, from its first operation of an open section on: put the
-- value back, and list every position marked from there on as not applied.
local first, positions, order = {}, {}, {}
for _, m in ipairs(marked) do
  if first[m.key] == nil and (all or open[m.section]) then
    first[m.key] = m
    positions[m.key] = {}
    order[#order + 1] = m.key
  end
  if first[m.key] ~= nil then
    table.insert(positions[m.key], m.position)
  end
end
for _, key in ipairs(order) do
  local m = first[key]
  local value = m.before
  local tokens = {}
  if value then
    for token in string.gmatch(value, '%S+') do
      tokens[#tokens + 1] = token
    end
  end
  if #tokens == 0 then
    value, tokens = '0/0', { '0/0' }
  end
  for _, position in ipairs(positions[key]) do
    local listed = false
    for t = 2, #tokens do
      if tokens[t] == position then
        listed = true
      end
    end
    if not listed then
      value = value .. ' ' .. position
      tokens[#tokens + 1] = position
    end
  end
  if m.ttl > 0 then
    redis.call('SET', key, value, 'PX', m.ttl)
  else
    redis.call('SET', key, value)
  end
end
return { failure, message, #order }
