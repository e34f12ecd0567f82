#!/usr/bin/env escript
-mode(compile).
%% Monitors across nodes, both ways, with the real reason (our handshake
%% offers DFLAG_DIST_MONITOR_NAME; ei's did not, and erts then sent no
%% MONITOR_P and no MONITOR_P_EXIT to the krill node).
%% Erlang monitors krill processes (by pid and by name): DOWN with normal,
%% shutdown, {krill, 40}, noproc for a dead pid and for a name nobody holds,
%% {krill, 41} for a registered one; a demonitored one gives no DOWN. The
%% krill process `mon` then monitors three Erlang processes: DOWN with
%% normal and custom, and one it demonitors, which erts must then show
%% monitored by nobody. Last, `mon` checks that the node holds no monitor
%% record or reference any more. Exit 0 when all is right; else a number
%% saying where, and a line on stderr.
main([Krill]) ->
    K = list_to_atom(Krill),
    {mon, K} ! {hello, self()},
    {Pn, Ps, Pk, Px, Pd} =
        receive {pids, P1, P2, P3, P4, P5} -> {P1, P2, P3, P4, P5}
        after 10000 -> fail(2, no_pids) end,
    Rn = monitor(process, Pn),
    Rs = monitor(process, Ps),
    Rk = monitor(process, Pk),
    Rx = monitor(process, Px),
    Rd = monitor(process, Pd),
    Rnobody = monitor(process, {nobody, K}),
    Rnamed = monitor(process, {named, K}),
    true = demonitor(Rx),
    Pn ! {krill, 1, <<>>},
    Ps ! {krill, 2, <<>>},
    Pk ! {krill, 3, <<>>},
    Px ! {krill, 1, <<>>},
    {named, K} ! {krill, 4, <<>>},
    down(3, Rn, Pn, normal),
    down(4, Rs, Ps, shutdown),
    down(5, Rk, Pk, {krill, 40}),
    down(6, Rd, Pd, noproc),
    down(7, Rnobody, {nobody, K}, noproc),
    down(8, Rnamed, {named, K}, {krill, 41}),
    receive {'DOWN', Rx, _, _, _} = M -> fail(9, M) after 300 -> ok end,
    %% krill monitors Erlang processes.
    N = spawn(fun() -> receive go -> ok end end),
    C = spawn(fun() -> receive go -> exit(custom) end end),
    D = spawn(fun() -> receive go -> exit(quiet) end end),
    {mon, K} ! {watch, self(), N, C, D},
    receive {krill, 5, <<>>} -> ok after 10000 -> fail(20, no_watch) end,
    watched(21, N, 1),
    watched(22, C, 1),
    watched(23, D, 0),
    N ! go, C ! go, D ! go,
    receive {krill, 6, <<>>} -> ok after 10000 -> fail(24, no_down_in_krill) end,
    {mon, K} ! {check, self()},
    receive
        {krill, 7, <<>>} -> halt(0);
        {krill, 8, <<>>} -> fail(25, records_left)
    after 10000 -> fail(26, no_check) end.

fail(Code, What) ->
    io:format(standard_error, "monitors.escript: ~p: ~p~n", [Code, What]),
    halt(Code).

down(Code, Ref, Obj, Why) ->
    receive
        {'DOWN', Ref, process, Obj, Why} -> ok;
        {'DOWN', Ref, _, _, _} = M -> fail(Code, M)
    after 10000 -> fail(Code, {no_down, Obj, Why})
    end.

%% P is monitored by Count processes (the krill one), within 5 s: the
%% monitor signal and our look reach P by different ways.
watched(Code, P, Count) -> watched(Code, P, Count, 50).
watched(Code, P, Count, 0) ->
    fail(Code, {monitored_by, erlang:process_info(P, monitored_by), Count});
watched(Code, P, Count, Tries) ->
    case erlang:process_info(P, monitored_by) of
        {monitored_by, L} when length(L) =:= Count -> ok;
        _ -> timer:sleep(100), watched(Code, P, Count, Tries - 1)
    end.
