-- Helpers shared by the specs (files and folders). Load with
-- `local support = dofile("spec/support.lua")`.
local support = {}

--- A new empty directory under /tmp.
function support.temp_dir(tag)
  local p = assert(io.popen("mktemp -d /tmp/siamese_" .. (tag or "spec") .. ".XXXXXX"))
  local dir = p:read("l")
  p:close()
  return dir
end

--- Sorted names in a directory (hidden ones included); {} when it cannot
-- be read.
function support.list_dir(dir)
  return (require("siamese.fs").list_dir(dir)) or {}
end

--- Removes a directory and the files in it.
function support.remove_dir(dir)
  for _, name in ipairs(support.list_dir(dir)) do os.remove(dir .. "/" .. name) end
  os.remove(dir)
end

--- The bytes of a file.
function support.read_file(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

--- Writes bytes to a file.
function support.write_file(path, bytes)
  local f = assert(io.open(path, "wb"))
  f:write(bytes)
  f:close()
end

--- Calls fn and checks it raises an error whose message contains every text.
function support.assert_error(fn, ...)
  local ok, err = pcall(fn)
  assert(not ok, "no error raised")
  for _, text in ipairs{...} do
    assert(tostring(err):find(text, 1, true), "error '" .. tostring(err) .. "' does not contain '" .. text .. "'")
  end
end

--- A token "sm_<id>_<secret>" with one character of its secret changed:
-- still well-formed (a character in the middle carries 6 whole bits, so
-- the base64url stays canonical, unlike the last one) but never valid.
function support.wrong_secret(token)
  local i = #token - 10
  local c = token:sub(i, i)
  return token:sub(1, i - 1) .. (c == "A" and "B" or "A") .. token:sub(i + 1)
end

--- Checks |got - want| <= tol, naming `what` otherwise.
function support.near(got, want, tol, what)
  assert(math.abs(got - want) <= tol,
    string.format("%s: got %.9g, expected %.9g (tolerance %g)", what or "value", got, want, tol))
end

-- ---- error bounds of float32 computations -------------------------------------
-- A comparison of a float32 result with a reference uses a bound that
-- follows from the computation, never a tolerance tuned on one machine
-- (OpenBLAS and our kernels sum in a different order on each CPU).

--- The unit roundoff of float32: 2^-24.
support.U = 2 ^ -24

--- gamma(n) = n u / (1 - n u): a sum or dot product of n terms, computed in
-- float32 in any order (with or without fused multiply-adds), is within
-- gamma(n) * sum |terms| of the exact value (Higham, Accuracy and Stability
-- of Numerical Algorithms, 3.1).
function support.gamma(n)
  local nu = n * support.U
  assert(nu < 1, "gamma: n too large")
  return nu / (1 - nu)
end

--- The bound gamma(n) * sum_i |a_i b_i| of a float32 dot product of the
-- lists a and b (n = #a; add rounding steps with extra).
function support.dot_bound(a, b, extra)
  local s = 0
  for i = 1, #a do s = s + math.abs(a[i] * b[i]) end
  return support.gamma(#a + (extra or 0)) * s
end

--- Checks |got - want| <= bound, where bound is derived from the
-- computation (support.gamma); names `what` and the bound otherwise.
function support.within(got, want, bound, what)
  assert(math.abs(got - want) <= bound,
    string.format("%s: got %.9g, expected %.9g (error bound %.3g, error %.3g)", what or "value", got, want,
      bound, math.abs(got - want)))
end

--- A string quoted for the shell the specs start commands with (io.popen).
function support.q(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

--- Runs bin/siamese with a shell-quoted argument string; returns stdout,
-- stderr and the exit status.
function support.siamese(args)
  local err = os.tmpname()
  local p = assert(io.popen("bin/siamese " .. args .. " 2>" .. err))
  local out = p:read("a")
  local _, _, code = p:close()
  local errtext = support.read_file(err)
  os.remove(err)
  return out, errtext, code
end

--- A JSON file decoded (fixtures).
function support.read_json(path)
  local json = require "siamese.json"
  return assert(json.decode(support.read_file(path)))
end

--- Sleeps s seconds (the sleep program: no busy wait, no timed assertion).
function support.sleep(s)
  local P = require("siamese.core").process
  P.waitpid(assert(P.spawn{"sleep", tostring(s)}))
end

--- Asserts that child pid is gone: waitpid has nothing to wait for and /proc
-- has no entry.
function support.assert_gone(pid)
  local la = require "luassert" -- busted's assert (this file's global assert is Lua's)
  la.is_number(pid)
  local exited, err = require("siamese.core").process.waitpid(pid, true)
  la.is_nil(exited)
  la.matches("No child processes", err)
  la.is_nil(io.open("/proc/" .. pid .. "/stat"))
end

return support
