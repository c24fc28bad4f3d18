--[[
A stand-in for darktable 4.2's Lua API (Lua API 9.0.0, as shared/hosts.md
reads it), just what plugin/darktable/copystand.lua uses: it loads the
script as darktable does, then raises "post-import-image" for each file
given, in the view given, the way the tethering view imports a capture.

  lua5.4 host.lua SCRIPT VIEW FILE...

Prints what the script shows with "print: " and "error: " in front.
]]

local script, view = arg[1], arg[2]
local events, prefs = {}, {}

package.loaded["darktable"] = {
  register_event = function(name, event, fn)
    assert(type(name) == "string" and type(fn) == "function", "register_event(name, event, fn)")
    events[event] = fn
  end,
  gui = { current_view = function() return { id = view } end },
  print = function(s) io.write("print: ", s, "\n") end,
  print_error = function(s) io.write("error: ", s, "\n") end,
  preferences = {
    register = function(mod, name, kind, label, tip, default)
      assert(kind == "string" and type(label) == "string" and type(tip) == "string")
      prefs[mod .. "/" .. name] = os.getenv("COPYSTAND_HOOK") or default
    end,
    read = function(mod, name, kind) return prefs[mod .. "/" .. name] end,
  },
}

dofile(script)
assert(events["post-import-image"], "the script registered no post-import-image handler")
for i = 3, #arg do
  local path, filename = arg[i]:match("^(.*)/([^/]+)$")
  events["post-import-image"]("post-import-image", { path = path, filename = filename })
end
