-- tollgate: decide several limiters as one atomic step, consume only if all agree.
-- KEYS[i]: limiter i's state. ARGV: 4 values per limiter, either
--   "take" | "peek", microseconds per cell, burst, cells to take
--     (GCRA: the state is the theoretical arrival time in microseconds), or
--   "window", window length in microseconds, max requests, a unique member
--     (a rolling window: a sorted set of admission times). Redis' own clock is the one clock, so replicas
-- whose clocks differ still agree. Lua numbers are doubles: microseconds since 1970
-- (about 1.8e15) stay exact below 2^53.
-- Returns {0, 0} when admitted, else {i, wait}: the limiter with the longest wait
-- (1-based) and that wait in microseconds, -1 meaning never.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local worst, which = 0, 0
local writes = {}
for i, key in ipairs(KEYS) do
  local kind = ARGV[(i - 1) * 4 + 1]
  local a = tonumber(ARGV[(i - 1) * 4 + 2])
  local b = tonumber(ARGV[(i - 1) * 4 + 3])
  local wait = 0
  if kind == 'window' then
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now - a)
    if redis.call('ZCARD', key) >= b then
      local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
      wait = math.max(tonumber(oldest[2]) + a - now, 1)
    else
      writes[i] = ARGV[(i - 1) * 4 + 4]
    end
  else
    local n = tonumber(ARGV[(i - 1) * 4 + 4])
    if n > 0 then
      local tat = tonumber(redis.call('GET', key) or now)
      if tat < now then tat = now end
      local next_tat = tat + n * a
      local allow_at = next_tat - b * a
      if n > b then
        wait = -1
      elseif allow_at > now then
        wait = allow_at - now
      elseif kind == 'take' then
        writes[i] = next_tat
      end
    end
  end
  if wait ~= 0 and worst ~= -1 and (wait == -1 or wait > worst) then
    worst, which = wait, i
  end
end
if which ~= 0 then
  return {which, worst}
end
for i, key in ipairs(KEYS) do
  local w = writes[i]
  if w ~= nil then
    local kind = ARGV[(i - 1) * 4 + 1]
    if kind == 'window' then
      local a = tonumber(ARGV[(i - 1) * 4 + 2])
      redis.call('ZADD', key, now, w)
      redis.call('PEXPIRE', key, math.ceil(a / 1000) + 1000)
    else
      redis.call('SET', key, string.format('%.0f', w), 'PX', math.ceil((w - now) / 1000) + 1000)
    end
  end
end
return {0, 0}
