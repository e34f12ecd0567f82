#!/usr/bin/env escript
-mode(compile). %% not erl_eval: it matched <<>> against <<"hi">>
%% A node that says "ready" and waits to be killed (or stopped) by the
%% test: the krill node connects to it.
main([]) ->
    register(erlbox, self()),
    io:format("ready~n"),
    receive stop -> ok after 60000 -> ok end,
    halt(0).
