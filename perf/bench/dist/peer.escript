#!/usr/bin/env escript
-mode(compile).
%% krill-bench dist's Erlang side (perf/bench/krill-bench/dist.c runs it with
%% ERL_FLAGS "-name N -setcookie C" and ERL_EPMD_PORT set):
%%   serve: registers `bench`, prints "ready"; answers {hello, Pid} with
%%     {welcome, self()}, echoes {krill, 1, B} to Pid, counts {krill, 3, _}
%%     and on {krill, 4, _} prints "cpu SECONDS" (its CPU since hello) and
%%     replies {krill, 5, <<Count:64/little>>}; {krill, 9, _} halts it.
%%   drive Node Messages Rounds: the same measurement as dist.c's krill
%%     driver against Node's `bench`, printing
%%     "result RATE P50_US P99_US CPU_SECONDS".
%% The peer's messages are the {krill, Tag, Binary} terms a krill node's
%% kr_send makes, so krill and Erlang drivers and peers mix freely.
main(["serve"]) ->
    register(bench, self()),
    io:format("ready~n"),
    serve(undefined, 0, 0);
main(["drive", Node, Messages, Rounds]) ->
    drive(list_to_atom(Node), list_to_integer(Messages), list_to_integer(Rounds)).

%% utime + stime of this OS process, from /proc/self/stat (ticks of 1/100 s).
cpu() ->
    {ok, S} = file:read_file("/proc/self/stat"),
    [_, After] = binary:split(S, <<") ">>),
    F = binary:split(After, <<" ">>, [global]),
    %% fields 14 and 15 of stat; After starts at field 3
    (binary_to_integer(lists:nth(12, F)) + binary_to_integer(lists:nth(13, F))) / 100.

serve(Peer, Count, Cpu0) ->
    receive
        {hello, P} ->
            P ! {welcome, self()},
            serve(P, 0, cpu());
        {krill, 1, B} ->
            Peer ! {krill, 1, B},
            serve(Peer, Count, Cpu0);
        {krill, 3, _} ->
            serve(Peer, Count + 1, Cpu0);
        {krill, 4, _} ->
            io:format("cpu ~.3f~n", [cpu() - Cpu0]),
            Peer ! {krill, 5, <<Count:64/little>>},
            serve(Peer, 0, Cpu0);
        {krill, 9, _} ->
            halt(0)
    after 60000 ->
        halt(3)
    end.

drive(Node, Messages, Rounds) ->
    {bench, Node} ! {hello, self()},
    Peer = receive {welcome, P} -> P after 10000 -> halt(2) end,
    Cpu0 = cpu(),
    B = <<0:64>>,
    Rtts = [rtt(Peer, B) || _ <- lists:seq(1, Rounds)],
    T0 = erlang:monotonic_time(nanosecond),
    stream(Peer, B, Messages),
    Peer ! {krill, 4, <<>>},
    receive {krill, 5, <<N:64/little>>} when N =:= Messages -> ok after 30000 -> halt(4) end,
    T1 = erlang:monotonic_time(nanosecond),
    Cpu = cpu() - Cpu0,
    S = list_to_tuple(lists:sort(Rtts)),
    P50 = element(max(1, (Rounds * 50 + 99) div 100), S),
    P99 = element(max(1, (Rounds * 99 + 99) div 100), S),
    io:format("result ~.1f ~.2f ~.2f ~.3f~n",
              [Messages * 1.0e9 / max(1, T1 - T0), P50 / 1000, P99 / 1000, Cpu]),
    Peer ! {krill, 9, <<>>},
    timer:sleep(200), %% halt does not wait for the connection's buffer
    halt(0).

rtt(Peer, B) ->
    T = erlang:monotonic_time(nanosecond),
    Peer ! {krill, 1, B},
    receive {krill, 1, _} -> ok after 10000 -> halt(5) end,
    erlang:monotonic_time(nanosecond) - T.

stream(_, _, 0) -> ok;
stream(Peer, B, N) -> Peer ! {krill, 3, B}, stream(Peer, B, N - 1).
