#!/usr/bin/env escript
%%! -kernel net_ticktime 1
-mode(compile).
%% A peer for the tick tests (net_ticktime 1 s, as the krill node's): it
%% tells the krill process registered as `tickee` its pid, waits for the
%% answer ({krill, 5, <<>>}), then either stops itself with SIGSTOP (arg
%% "stop": silent, socket open) or idles, ticking (arg "quiet"), until the
%% test kills it.
main([Krill, Mode]) ->
    K = list_to_atom(Krill),
    {tickee, K} ! {hello, self()},
    receive {krill, 5, <<>>} -> ok after 10000 -> halt(2) end,
    io:format("ready~n"),
    case Mode of
        "stop" -> os:cmd("kill -STOP " ++ os:getpid());
        _ -> ok
    end,
    receive stop -> ok after 60000 -> ok end,
    halt(0).
