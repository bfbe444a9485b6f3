-- luacheck configuration: Lua 5.4, no globals; the nn protocol's methods
-- keep their documented argument names even where a layer ignores them.
std = "lua54"
unused_args = false
max_line_length = false
-- specs assign pcall results they only partly check
files["spec"] = { std = "+busted", ignore = { "211/ok", "231/ok", "311/ok" } }
