// The hand-written part of the Lua dissector (see LuaDissector.swift for the generated
// declarations it uses: F[name] fields, VS[name] value strings, RECORD_VERSION,
// HEADER_LENGTH). Every read is clamped to the captured bytes: a Lua dissector that reads
// past them raises "Range is out of bounds" (virtio-facts.md).

enum LuaDissectorBody {
    static let text = #"""
local ef = {
  response = ProtoExpert.new("virtio_scsi.expert.response", "virtio-scsi response is not OK", expert.group.RESPONSE_CODE, expert.severity.WARN),
  check = ProtoExpert.new("virtio_scsi.expert.check_condition", "CHECK CONDITION", expert.group.RESPONSE_CODE, expert.severity.WARN),
  torn = ProtoExpert.new("virtio_scsi.expert.torn", "Torn chain: the driver recycled the buffers before the copy ended", expert.group.SEQUENCE, expert.severity.WARN),
  orphan = ProtoExpert.new("virtio_scsi.expert.orphan", "Orphan completion: its request was not captured", expert.group.SEQUENCE, expert.severity.NOTE),
  malformed = ProtoExpert.new("virtio_scsi.expert.malformed", "Malformed chain", expert.group.MALFORMED, expert.severity.ERROR),
  truncated = ProtoExpert.new("virtio_scsi.expert.truncated", "Truncated record or message", expert.group.MALFORMED, expert.severity.ERROR),
  version = ProtoExpert.new("virtio_scsi.expert.version", "Unknown record version", expert.group.UNDECODED, expert.severity.ERROR),
  drop = ProtoExpert.new("virtio_scsi.expert.drop", "Chains went by uncaptured", expert.group.SEQUENCE, expert.severity.WARN),
}
vs.experts = { ef.response, ef.check, ef.torn, ef.orphan, ef.malformed, ef.truncated, ef.version, ef.drop }

local iscsi = Dissector.get("iscsi")
local devices = {}    -- device instance -> { cdb, sense, pi, name }
local pending = {}    -- "instance:queue:head" -> the request in flight { frame, txid, ctrl, lun, tag }
local links = {}      -- frame number -> { req, resp, latency, rq }

local function device(inst)
  local d = devices[inst]
  if not d then d = { cdb = 32, sense = 96, pi = false, name = "dev" .. inst }; devices[inst] = d end
  return d
end

local function queue_name(q)
  if q == 0 then return "controlq" elseif q == 1 then return "eventq" else return "request" .. (q - 2) end
end

-- A range of at most len bytes at off, or nil when nothing of it was captured.
local function R(tvb, off, len)
  local cap = tvb:captured_len()
  if off >= cap or len <= 0 then return nil end
  if off + len > cap then len = cap - off end
  return tvb:range(off, len)
end

-- Adds a little-endian field when all of its bytes are there; returns the range.
local function add(t, name, tvb, off, len, value)
  local f = F[name]
  if not f then error("vqtap.lua: undeclared field " .. name) end
  local r = R(tvb, off, len)
  if not r or r:len() < len then return nil end
  if value ~= nil then t:add_le(f, r, value) else t:add_le(f, r) end
  return r
end

local function u(tvb, off, len)
  local r = R(tvb, off, len)
  if not r or r:len() < len then return nil end
  return r:le_uint()
end

local function be(v, n)
  local s = ""
  for i = n - 1, 0, -1 do s = s .. string.format("%02x", bit.band(bit.rshift(v, 8 * i), 0xff)) end
  return s
end

local function pad(ba)
  local n = (4 - ba:len() % 4) % 4
  if n > 0 then ba:append(ByteArray.new(string.rep("00", n))) end
end

local function lun_tree(t, m, off)
  local r = R(m, off, 8)
  if not r or r:len() < 8 then return end
  local lt = t:add(F["virtio_scsi.lun"], r)
  lt:add(F["virtio_scsi.lun.raw"], r)
  if m(off, 1):uint() == 1 then
    lt:add(F["virtio_scsi.lun.target"], m(off + 1, 1))
    local w = m(off + 2, 2):uint()
    lt:add(F["virtio_scsi.lun.lun"], m(off + 2, 2), bit.band(w, 0x3fff))
    lt:add(F["virtio_scsi.lun.address_method"], m(off + 2, 1), bit.rshift(w, 14))
  end
end

-- iSCSI PDUs for Wireshark's SCSI layer, as `vqtap read --encap iscsi` writes them.
local function scsi_command(lun, tag, attr, cdb, rd, wr, edtl, data_out)
  local cdb_len = cdb:len()
  local op = cdb:get_index(0)
  if op < 0x20 then cdb_len = math.min(cdb_len, 6)
  elseif op < 0x60 then cdb_len = math.min(cdb_len, 10)
  elseif op >= 0x80 and op < 0xa0 then cdb_len = math.min(cdb_len, 16)
  elseif op >= 0xa0 and op < 0xc0 then cdb_len = math.min(cdb_len, 12)
  elseif op == 0x7f and cdb_len >= 8 then cdb_len = math.min(cdb_len, 8 + cdb:get_index(7)) end
  local extra = math.max(0, cdb_len - 16)
  local ahs = 0
  if extra > 0 then ahs = math.floor((4 + extra + 3) / 4) end
  local flags = 0x80 + (({[0] = 1, [1] = 2, [2] = 3, [3] = 4})[attr] or 0)
  if rd then flags = flags + 0x40 end
  if wr then flags = flags + 0x20 end
  local dlen = 0
  if wr and data_out then dlen = data_out:len() end
  if not (rd or wr) then edtl = 0 end
  local pdu = ByteArray.new(be(0x01, 1) .. be(flags, 1) .. "0000" .. be(ahs, 1) .. be(dlen, 3))
  pdu:append(lun)
  pdu:append(ByteArray.new(be(tag, 4) .. be(edtl, 4) .. "0000000100000001"))
  local first = cdb:subset(0, math.min(16, cdb_len))
  pdu:append(first)
  if first:len() < 16 then pdu:append(ByteArray.new(string.rep("00", 16 - first:len()))) end
  if extra > 0 then
    pdu:append(ByteArray.new(be(extra + 1, 2) .. "0100"))
    pdu:append(cdb:subset(16, extra))
    pad(pdu)
  end
  if dlen > 0 then pdu:append(data_out); pad(pdu) end
  return pdu
end

local function scsi_completion(lun, tag, status, response, residual, sense, data_in)
  local pdu
  if response == 0 and status == 0 and data_in and data_in:len() > 0 then
    local flags = 0x81
    if residual > 0 then flags = flags + 0x02 end
    pdu = ByteArray.new("25" .. be(flags, 1) .. "00" .. be(status, 1) .. "00" .. be(data_in:len(), 3))
    pdu:append(lun)
    pdu:append(ByteArray.new(be(tag, 4) .. "ffffffff" .. "00000001" .. "00000002" .. "00000002" .. "00000000" .. "00000000" .. be(residual, 4)))
    pdu:append(data_in)
  else
    local seg = ByteArray.new()
    if sense and sense:len() > 0 then seg = ByteArray.new(be(sense:len(), 2)); seg:append(sense) end
    local flags = 0x80
    if residual > 0 then flags = flags + 0x02 end
    local rsp = 0
    if response ~= 0 then rsp = 1 end
    pdu = ByteArray.new("21" .. be(flags, 1) .. be(rsp, 1) .. be(status, 1) .. "00" .. be(seg:len(), 3))
    pdu:append(ByteArray.new(string.rep("00", 8)))
    pdu:append(ByteArray.new(be(tag, 4) .. "00000000" .. "00000001" .. "00000002" .. "00000002" .. string.rep("00", 8) .. be(residual, 4)))
    pdu:append(seg)
  end
  pad(pdu)
  return pdu
end

local function call_iscsi(pdu, pinfo, tree, outbound, port)
  if not iscsi then return end
  local a, b = Address.ip("10.0.0.1"), Address.ip("10.0.0.2")
  if outbound then
    pinfo.src, pinfo.dst, pinfo.src_port, pinfo.dst_port = a, b, port, 3260
  else
    pinfo.src, pinfo.dst, pinfo.src_port, pinfo.dst_port = b, a, 3260, port
  end
  pcall(function() pinfo.port_type = 2 end)
  -- Wireshark's SCSI layer may throw on odd data (it reports it as expert info): keep our tree.
  pcall(function() iscsi:call(pdu:tvb("iSCSI PDU (for Wireshark's SCSI decoding)"), pinfo, tree) end)
end

-- Our summary first, then what the SCSI layer wrote.
local function set_info(pinfo, text)
  local scsi = ""
  pcall(function() scsi = tostring(pinfo.cols.info) end)
  pcall(function() pinfo.cols.info:clear_fence() end)
  if scsi ~= "" and scsi ~= text then pinfo.cols.info = text .. " | " .. scsi else pinfo.cols.info = text end
  pinfo.cols.protocol = "virtio-scsi"
end

local function sense_tree(t, m, off, len)
  if len <= 0 then return end
  local r = R(m, off, len)
  if not r then return end
  local st = t:add(F["virtio_scsi.sense"], r)
  local code = u(m, off, 1)
  if not code then return end
  st:add(F["virtio_scsi.sense.response_code"], m(off, 1), bit.band(code, 0x7f))
  code = bit.band(code, 0x7f)
  if code == 0x70 or code == 0x71 then
    add(st, "virtio_scsi.sense.key", m, off + 2, 1, bit.band(u(m, off + 2, 1) or 0, 0x0f))
    add(st, "virtio_scsi.sense.asc", m, off + 12, 1)
    add(st, "virtio_scsi.sense.ascq", m, off + 13, 1)
  elseif code == 0x72 or code == 0x73 then
    add(st, "virtio_scsi.sense.key", m, off + 1, 1, bit.band(u(m, off + 1, 1) or 0, 0x0f))
    add(st, "virtio_scsi.sense.asc", m, off + 2, 1)
    add(st, "virtio_scsi.sense.ascq", m, off + 3, 1)
  end
end

function vs.dissector(tvb, pinfo, tree)
  local cap = tvb:captured_len()
  if cap < 4 or tvb(0, 4):string() ~= "VQRC" then return 0 end
  pinfo.cols.protocol = "virtio-scsi"
  local top = tree:add(vs, tvb(0, cap))
  local rt = top:add(F["virtio_scsi.record"], tvb(0, math.min(cap, HEADER_LENGTH)))
  local version = u(tvb, 4, 1)
  add(rt, "virtio_scsi.record.version", tvb, 4, 1)
  if version ~= RECORD_VERSION then
    if version then rt:add_proto_expert_info(ef.version, "record version " .. version .. "; this dissector reads version " .. RECORD_VERSION) end
    pinfo.cols.info = "vqtap record of unknown version"
    return cap
  end
  if cap < HEADER_LENGTH then
    rt:add_proto_expert_info(ef.truncated, "record header cut at " .. cap .. " bytes")
    return cap
  end
  local kind = u(tvb, 5, 1)
  local hlen = u(tvb, 6, 2)
  local inst = u(tvb, 10, 2)
  local queue = u(tvb, 12, 2)
  local head = u(tvb, 14, 2)
  local flags = u(tvb, 16, 4)
  local used_len = u(tvb, 20, 4)
  local txid = tvb(24, 8):le_uint64()
  local latency = tvb(32, 8):le_uint64()
  local nseg = u(tvb, 42, 2)
  add(rt, "virtio_scsi.record.kind", tvb, 5, 1)
  add(rt, "virtio_scsi.record.header_length", tvb, 6, 2)
  add(rt, "virtio_scsi.record.device_type", tvb, 8, 2)
  add(rt, "virtio_scsi.record.device_instance", tvb, 10, 2)
  add(rt, "virtio_scsi.record.queue", tvb, 12, 2)
  rt:add(F["virtio_scsi.record.queue_name"], tvb(12, 2), queue_name(queue))
  add(rt, "virtio_scsi.record.head", tvb, 14, 2)
  add(rt, "virtio_scsi.record.flags", tvb, 16, 4)
  add(rt, "virtio_scsi.record.used_length", tvb, 20, 4)
  add(rt, "virtio_scsi.record.transaction_id", tvb, 24, 8)
  add(rt, "virtio_scsi.record.latency_ns", tvb, 32, 8)
  add(rt, "virtio_scsi.record.ring_index", tvb, 40, 2)
  add(rt, "virtio_scsi.record.segment_count", tvb, 42, 2)
  add(rt, "virtio_scsi.record.error", tvb, 44, 2)
  add(rt, "virtio_scsi.record.error_detail", tvb, 48, 8)
  if bit.band(flags, 4) ~= 0 then rt:add_proto_expert_info(ef.torn) end
  if bit.band(flags, 8) ~= 0 then rt:add_proto_expert_info(ef.orphan) end
  if bit.band(flags, 16) ~= 0 then rt:add_proto_expert_info(ef.malformed, "malformed chain: ring error " .. u(tvb, 44, 2)) end
  local dev = device(inst)
  local qn = queue_name(queue)
  local off = hlen
  local info = dev.name .. " " .. qn .. " "

  if kind == 3 then
    add(top, "virtio_scsi.drop.count", tvb, off, 8)
    add(top, "virtio_scsi.drop.reason", tvb, off + 8, 2)
    top:add_proto_expert_info(ef.drop)
    local c = R(tvb, off, 8)
    pinfo.cols.info = info .. "! dropped " .. (c and c:len() == 8 and tostring(c:le_uint64()) or "?") .. " chains"
    return cap
  elseif kind == 4 then
    add(top, "virtio_scsi.state.state", tvb, off, 1)
    add(top, "virtio_scsi.state.queue_size", tvb, off + 2, 2)
    add(top, "virtio_scsi.state.queue_count", tvb, off + 4, 2)
    add(top, "virtio_scsi.state.generation", tvb, off + 8, 8)
    add(top, "virtio_scsi.state.features", tvb, off + 16, 8)
    add(top, "virtio_scsi.state.cdb_size", tvb, off + 24, 4)
    add(top, "virtio_scsi.state.sense_size", tvb, off + 28, 4)
    add(top, "virtio_scsi.state.desc", tvb, off + 32, 8)
    add(top, "virtio_scsi.state.avail", tvb, off + 40, 8)
    add(top, "virtio_scsi.state.used", tvb, off + 48, 8)
    local nlen = u(tvb, off + 6, 2) or 0
    local name = R(tvb, off + 56, nlen)
    if name then top:add(F["virtio_scsi.state.name"], name) end
    if not pinfo.visited then
      -- After a reset nothing in flight on this queue survives.
      if u(tvb, off, 1) ~= 1 then pending[inst .. ":" .. queue .. ":"] = nil
        for k, _ in pairs(pending) do
          if k:sub(1, #(inst .. ":" .. queue .. ":")) == inst .. ":" .. queue .. ":" then pending[k] = nil end
        end
      end
      if name and name:len() > 0 then dev.name = name:string() end
      dev.cdb = u(tvb, off + 24, 4) or 32
      dev.sense = u(tvb, off + 28, 4) or 96
      local feat = R(tvb, off + 16, 8)
      dev.pi = feat ~= nil and feat:len() == 8 and bit.band(feat(0, 1):uint(), 8) ~= 0
    end
    local state = u(tvb, off, 1)
    pinfo.cols.info = dev.name .. " " .. qn .. " * " .. ((VS["virtio_scsi.state.state"] or {})[state] or "state")
    return cap
  elseif kind ~= 1 and kind ~= 2 then
    pinfo.cols.info = info .. "unknown record kind " .. tostring(kind)
    return cap
  end

  -- The chain: segments, and the bytes of the side this record is about.
  local gathered = ByteArray.new()
  local readable_len, writable_len = 0, 0
  for i = 1, nseg do
    local r = R(tvb, off, 20)
    if not r or r:len() < 20 then top:add_proto_expert_info(ef.truncated, "segment " .. i .. " cut"); break end
    local len = u(tvb, off + 8, 4)
    local ncap = u(tvb, off + 12, 4)
    local sflags = u(tvb, off + 16, 2)
    local st = top:add(F["virtio_scsi.segment"], tvb(off, math.min(cap - off, 20 + ncap)))
    st:set_text("Segment " .. (i - 1) .. ": " .. len .. " bytes" .. (bit.band(sflags, 2) ~= 0 and " (device-writable)" or ""))
    add(st, "virtio_scsi.segment.address", tvb, off, 8)
    add(st, "virtio_scsi.segment.length", tvb, off + 8, 4)
    add(st, "virtio_scsi.segment.captured_length", tvb, off + 12, 4)
    add(st, "virtio_scsi.segment.flags", tvb, off + 16, 2)
    local writable = bit.band(sflags, 2) ~= 0
    if writable then writable_len = writable_len + len else readable_len = readable_len + len end
    local b = R(tvb, off + 20, ncap)
    if b then
      st:add(F["virtio_scsi.segment.bytes"], b)
      if (kind == 1 and not writable) or (kind == 2 and writable) then gathered:append(b:bytes()) end
      if b:len() < ncap then top:add_proto_expert_info(ef.truncated, "segment " .. (i - 1) .. " bytes cut"); break end
    else
      if ncap > 0 then top:add_proto_expert_info(ef.truncated, "segment " .. (i - 1) .. " bytes cut"); break end
    end
    off = off + 20 + ncap + (4 - ncap % 4) % 4
  end
  if kind == 2 and gathered:len() > used_len then gathered = gathered:subset(0, used_len) end

  -- Pairing as vqtap's RecordDecoder does it: one request in flight per queue and head; a
  -- completion takes it when the transaction matches (or carries none).
  local hk = inst .. ":" .. queue .. ":" .. head
  if not pinfo.visited then
    if kind == 1 then
      pending[hk] = { frame = pinfo.number, txid = tostring(txid) }
    else
      local p = pending[hk]
      if p and (p.txid == tostring(txid) or txid == UInt64(0)) then
        links[pinfo.number] = { req = p.frame, latency = latency, rq = p }
        links[p.frame] = { resp = pinfo.number }
        pending[hk] = nil
      end
    end
  end
  local lk = links[pinfo.number]
  local rq = nil
  if lk and lk.resp then top:add(F["virtio_scsi.response_in"], lk.resp):set_generated() end
  if lk and lk.req then
    top:add(F["virtio_scsi.request_in"], lk.req):set_generated()
    local ns = lk.latency:tonumber()
    top:add(F["virtio_scsi.time"], NSTime.new(math.floor(ns / 1e9), ns % 1e9)):set_generated()
    rq = lk.rq
  end
  -- What the request side learns for its completion (first pass only).
  local mine = nil
  if kind == 1 and not pinfo.visited then mine = pending[hk] end

  local m = nil
  if gathered:len() > 0 then m = gathered:tvb("virtio-scsi " .. (kind == 1 and "request" or "response")) end
  local port = 40000 + (inst % 64) * 256 + (queue % 256)
  local dir = kind == 1 and "> " or "< "

  if queue >= 2 and kind == 1 then
    local hdr = dev.pi and 27 or 19
    if not m or m:captured_len() < hdr + dev.cdb then
      top:add_proto_expert_info(ef.truncated, "request header cut")
      pinfo.cols.info = info .. dir .. "cmd-req (truncated)"
      return cap
    end
    lun_tree(top, m, 0)
    add(top, "virtio_scsi.id", m, 8, 8)
    add(top, "virtio_scsi.task_attr", m, 16, 1)
    add(top, "virtio_scsi.prio", m, 17, 1)
    add(top, "virtio_scsi.crn", m, 18, 1)
    if dev.pi then add(top, "virtio_scsi.pi.bytes_out", m, 19, 4); add(top, "virtio_scsi.pi.bytes_in", m, 23, 4) end
    local ct = top:add(F["virtio_scsi.cdb"], m(hdr, dev.cdb))
    add(ct, "virtio_scsi.cdb.opcode", m, hdr, 1)
    local data_len = m:captured_len() - hdr - dev.cdb
    local data_out = nil
    if data_len > 0 then
      local dt = top:add(F["virtio_scsi.data_out"], m(hdr + dev.cdb, data_len))
      dt:add(F["virtio_scsi.data_out.length"], m(hdr + dev.cdb, data_len), data_len)
      dt:add(F["virtio_scsi.data_out.bytes"], m(hdr + dev.cdb, data_len))
      data_out = m(hdr + dev.cdb, data_len):bytes()
    end
    local id = m(8, 8):le_uint64()
    local tag = m(8, 4):le_uint()
    local op = m(hdr, 1):uint()
    local name = (VS["virtio_scsi.cdb.opcode"] or {})[op] or string.format("opcode 0x%02x", op)
    local in_cap = writable_len - 12 - dev.sense
    local rd = in_cap > 0
    local out_cap = readable_len - hdr - dev.cdb
    local wr = (not rd) and out_cap > 0
    local edtl = rd and in_cap or (wr and out_cap or 0)
    if mine then mine.lun = m(0, 8):bytes(); mine.tag = tag end
    pinfo.cols.info = ""
    call_iscsi(scsi_command(m(0, 8):bytes(), tag, m(16, 1):uint(), m(hdr, dev.cdb):bytes(), rd, wr, edtl, data_out), pinfo, tree, true, port)
    set_info(pinfo, info .. dir .. "cmd-req tag 0x" .. id:tohex() .. " " .. name)
    return cap
  elseif queue >= 2 then
    if not m or m:captured_len() < 12 then
      top:add_proto_expert_info(ef.truncated, "response header cut")
      pinfo.cols.info = info .. dir .. "cmd-resp (truncated)"
      return cap
    end
    add(top, "virtio_scsi.sense_len", m, 0, 4)
    add(top, "virtio_scsi.residual", m, 4, 4)
    add(top, "virtio_scsi.status_qualifier", m, 8, 2)
    add(top, "virtio_scsi.status", m, 10, 1)
    add(top, "virtio_scsi.response", m, 11, 1)
    local sense_len = m(0, 4):le_uint()
    local status, response = m(10, 1):uint(), m(11, 1):uint()
    if response ~= 0 then top:add_proto_expert_info(ef.response, "virtio response " .. ((VS["virtio_scsi.response"] or {})[response] or response)) end
    if status == 2 then top:add_proto_expert_info(ef.check) end
    local sense_bytes = math.min(sense_len, dev.sense)
    sense_tree(top, m, 12, sense_bytes)
    local data_off = 12 + dev.sense
    local data_in = nil
    if m:captured_len() > data_off then
      local n = m:captured_len() - data_off
      local dt = top:add(F["virtio_scsi.data_in"], m(data_off, n))
      dt:add(F["virtio_scsi.data_in.length"], m(data_off, n), n)
      dt:add(F["virtio_scsi.data_in.bytes"], m(data_off, n))
      data_in = m(data_off, n):bytes()
    end
    local summary = info .. dir .. "cmd-resp " .. ((VS["virtio_scsi.response"] or {})[response] or "") .. " " .. ((VS["virtio_scsi.status"] or {})[status] or string.format("status 0x%02x", status))
    pinfo.cols.info = ""
    if rq and rq.lun then
      local sense = nil
      local sr = R(m, 12, sense_bytes)
      if sr then sense = sr:bytes() end
      call_iscsi(scsi_completion(rq.lun, rq.tag, status, response, m(4, 4):le_uint(), sense, data_in), pinfo, tree, false, port)
    end
    set_info(pinfo, summary)
    return cap
  elseif queue == 0 and kind == 1 then
    local ctype = m and u(m, 0, 4)
    if not ctype then top:add_proto_expert_info(ef.truncated); return cap end
    add(top, "virtio_scsi.ctrl.type", m, 0, 4)
    if ctype == 0 then
      add(top, "virtio_scsi.tmf.subtype", m, 4, 4)
      lun_tree(top, m, 8)
      add(top, "virtio_scsi.id", m, 16, 8)
      pinfo.cols.info = info .. dir .. "tmf " .. ((VS["virtio_scsi.tmf.subtype"] or {})[u(m, 4, 4) or -1] or "")
    else
      lun_tree(top, m, 4)
      add(top, "virtio_scsi.an.event_requested", m, 12, 4)
      pinfo.cols.info = info .. dir .. ((VS["virtio_scsi.ctrl.type"] or {})[ctype] or "control")
    end
    if mine then mine.ctrl = ctype end
    return cap
  elseif queue == 0 then
    if not m then top:add_proto_expert_info(ef.truncated); return cap end
    local ctype = rq and rq.ctrl
    if ctype == nil then ctype = (m:captured_len() >= 5) and 1 or 0 end
    if ctype == 0 then
      add(top, "virtio_scsi.tmf.response", m, 0, 1)
      local r = u(m, 0, 1) or 0
      if r ~= 0 and r ~= 10 then top:add_proto_expert_info(ef.response) end
      pinfo.cols.info = info .. dir .. "tmf-resp " .. ((VS["virtio_scsi.tmf.response"] or {})[r] or r)
    else
      add(top, "virtio_scsi.an.event_actual", m, 0, 4)
      add(top, "virtio_scsi.an.response", m, 4, 1)
      local r = u(m, 4, 1) or 0
      if r ~= 0 then top:add_proto_expert_info(ef.response) end
      pinfo.cols.info = info .. dir .. "an-resp " .. ((VS["virtio_scsi.an.response"] or {})[r] or r)
    end
    return cap
  elseif queue == 1 and kind == 1 then
    top:add(F["virtio_scsi.event_buffer_length"], tvb(0, HEADER_LENGTH), writable_len)
    pinfo.cols.info = info .. dir .. "event buffer posted (" .. writable_len .. " bytes)"
    return cap
  else
    local ev = m and u(m, 0, 4)
    if not ev then top:add_proto_expert_info(ef.truncated); return cap end
    add(top, "virtio_scsi.event.type", m, 0, 4, bit.band(ev, 0x7fffffff))
    add(top, "virtio_scsi.event.events_missed", m, 0, 4, bit.band(ev, 0x80000000) ~= 0)
    lun_tree(top, m, 4)
    add(top, "virtio_scsi.event.reason", m, 12, 4)
    pinfo.cols.info = info .. dir .. "event " .. ((VS["virtio_scsi.event.type"] or {})[bit.band(ev, 0x7fffffff)] or ev)
    return cap
  end
end

function vs.init()
  devices, pending, links = {}, {}, {}
end

DissectorTable.get("wtap_encap"):add(wtap_encaps.USER0, vs)
"""#
}
