--[[
copystand for darktable: hands each tethered capture to the copystand
station running on this computer, which names it from the catalog number
current when it was shot and attaches it to its record in Specify 7.

darktable raises "post-import-image" for every image it imports; in the
tethering view that is each shot it has just downloaded.  The file is
given to copystand-gphoto2-hook, which copies it into the station's
session folder, journals it and returns at once (no network), so
darktable does not wait; the station names it.  darktable's own copy stays where
it is.

Install (docs/plugins.md):
  mkdir -p ~/.config/darktable/lua
  cp copystand.lua ~/.config/darktable/lua/
  echo 'require "copystand"' >> ~/.config/darktable/luarc
]]

local dt = require "darktable"

local MODULE = "copystand"

dt.preferences.register(MODULE, "hook", "string",
  "copystand: hook program",
  "copystand-gphoto2-hook, by its path or found on PATH",
  "copystand-gphoto2-hook")

-- One word for sh: in single quotes, a single quote as '\''.
local function quoted(s)
  return "'" .. (s:gsub("'", "'\\''")) .. "'"
end

local function hand_over(event, image)
  local view = dt.gui.current_view()
  if not view or view.id ~= "tethering" then
    return  -- an ordinary import, not a capture
  end
  local file = image.path .. "/" .. image.filename
  local hook = dt.preferences.read(MODULE, "hook", "string")
  if hook == nil or hook == "" then
    hook = "copystand-gphoto2-hook"
  end
  local cmd = "ACTION=download ARGUMENT=" .. quoted(file) .. " " .. quoted(hook) .. " 2>&1"
  local pipe = io.popen(cmd)
  local said = pipe and pipe:read("a") or ""
  local ok = pipe and pipe:close()
  said = said:gsub("%s+$", "")
  if ok then
    dt.print(said)           -- "copystand: IMG_0001.CR2 → the station (as ...)"
  else
    dt.print_error(said ~= "" and said or ("copystand: cannot run " .. hook))
    dt.print("NOT given to copystand: " .. image.filename .. " (see the log)")
  end
end

dt.register_event(MODULE, "post-import-image", hand_over)
