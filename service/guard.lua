-- One request's admission, atomically, in Redis: the client's token bucket, then its query-attack history.
-- The same rules as service/budgets.py and service/querydetector.py, on Redis's clock (shared by every replica).
--
-- KEYS[1]  the client's bucket (hash: tokens, updated)
-- KEYS[2]  its fingerprints (list, oldest first; each: time (8-byte double), near (1 byte), digest (8), cells)
-- KEYS[3]  whether it was flagged at its last query ("1" or "0")
-- ARGV     images, rate (0: no budget), burst, detect (0/1), history, window_s, limit (distance x cells),
--          matches, threshold, cells per fingerprint, then the fingerprints: per image its digest then its cells
-- returns  {granted, wait_s, left, flagged, newly_flagged, near_duplicates}; wait_s and left as strings

local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1e6
local n, rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local left = -1

if rate > 0 then
  local bucket = redis.call('HMGET', KEYS[1], 'tokens', 'updated')
  local tokens = tonumber(bucket[1]) or burst
  local updated = tonumber(bucket[2]) or now
  tokens = math.min(burst, tokens + math.max(now - updated, 0) * rate)
  local wait = 0
  if tokens >= n then tokens = tokens - n else wait = (math.min(n, burst) - tokens) / rate end
  left = tokens
  redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'updated', string.format('%.17g', now))
  redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)  -- gone only once full again
  if wait > 0 then return {0, string.format('%.6f', wait), string.format('%.6f', left), 0, 0, 0} end
end
if ARGV[4] == '0' then return {1, '0', string.format('%.6f', left), 0, 0, 0} end

local history, window, limit = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local matches, threshold, size = tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10])
local prints, width, cutoff = ARGV[11], 8 + size, now - window
local times, nears, digests, cells = {}, {}, {}, {}  -- cells: each entry's cell bytes, read only where needed
local kept = redis.call('LRANGE', KEYS[2], 0, -1)
if #kept > 0 and #kept[1] ~= 9 + width then  -- another dataset's input shape: a fresh history
  redis.call('DEL', KEYS[2])
  kept = {}
end
for i, entry in ipairs(kept) do
  times[i] = struct.unpack('>d', entry)
  nears[i] = string.byte(entry, 9) == 1
  digests[i] = string.sub(entry, 10, 17)
  cells[i] = string.sub(entry, 18)
end

local added = {}
for k = 0, n - 1 do
  local at = k * width
  local digest, raw = string.sub(prints, at + 1, at + 8), string.sub(prints, at + 9, at + width)
  local mine = {string.byte(raw, 1, size)}
  local byte = string.byte
  local recent, retry = false, false
  for i = 1, #times do
    if times[i] > cutoff then
      recent = true
      if digests[i] == digest then retry = true end
    end
  end
  local near = false
  if recent and not retry then
    local close = 0
    for i = 1, #times do
      if times[i] > cutoff then
        local gap, theirs = 0, cells[i]
        for j = 1, size do  -- most kept prints are far: the sum passes the limit within a few cells
          local d = byte(theirs, j) - mine[j]
          gap = gap + (d < 0 and -d or d)
          if gap > limit then break end
        end
        if gap <= limit then close = close + 1 end
      end
    end
    near = close >= matches
  end
  table.insert(times, now); table.insert(nears, near); table.insert(digests, digest); table.insert(cells, raw)
  if #times > history then
    table.remove(times, 1); table.remove(nears, 1); table.remove(digests, 1); table.remove(cells, 1)
  end
  added[#added + 1] = struct.pack('>d', now) .. (near and '\1' or '\0') .. digest .. raw
end

local ttl = math.ceil(window * 1000)
redis.call('RPUSH', KEYS[2], unpack(added))
redis.call('LTRIM', KEYS[2], -history, -1)
redis.call('PEXPIRE', KEYS[2], ttl)  -- idle for a window, nothing kept is recent any more
local count = 0
for i = 1, #times do
  if nears[i] and times[i] > cutoff then count = count + 1 end
end
local flagged = count >= threshold
local was = redis.call('GET', KEYS[3]) == '1'
redis.call('SET', KEYS[3], flagged and '1' or '0', 'PX', ttl)
return {1, '0', string.format('%.6f', left), flagged and 1 or 0, (flagged and not was) and 1 or 0, count}
