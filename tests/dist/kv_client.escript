#!/usr/bin/env escript
-mode(compile).
%% The failover client: finds {kv, Node} among the two nodes given (whois),
%% monitors the service's pid (erlang:monitor/2, answered by the krill
%% node; here its DOWN is noconnection, the node being killed)
%% and writes Key = 1..N, Value = 10 * Key, printing "acked K" for each
%% write the service acknowledged. When the service goes (DOWN), it finds
%% the new one by name and writes on, resending the write that was not
%% acknowledged; at the end it reads back every acknowledged write.
%% Exit 0 when all are there; prints "down Reason" and "found Node".
main([A0, B0, N0]) ->
    Nodes = [list_to_atom(A0), list_to_atom(B0)],
    N = list_to_integer(N0),
    S = find(Nodes, 100),
    Acked = write(1, N, S, Nodes, []),
    {P, _} = find(Nodes, 100),
    [check(P, K) || K <- Acked],
    io:format("ok ~p~n", [length(Acked)]),
    halt(0).

find(_, 0) -> io:format("no service~n"), halt(10);
find(Nodes, T) ->
    Found = lists:foldl(
              fun(_, {P, R}) -> {P, R};
                 (Node, none) ->
                      {kv, Node} ! {whois, self()},
                      receive {kv_pid, P} -> {P, erlang:monitor(process, P)}
                      after 300 -> none end
              end, none, Nodes),
    case Found of
        none -> timer:sleep(100), find(Nodes, T - 1);
        {P, R} -> io:format("found ~s~n", [node(P)]), {P, R}
    end.

write(K, N, _, _, Acked) when K > N -> lists:reverse(Acked);
write(K, N, {P, R} = S, Nodes, Acked) ->
    P ! {put, self(), K, 10 * K},
    receive
        {kv_ok, K} ->
            io:format("acked ~p~n", [K]),
            timer:sleep(5),
            write(K + 1, N, S, Nodes, [K | Acked]);
        {'DOWN', R, process, P, Reason} ->
            io:format("down ~p~n", [Reason]),
            write(K, N, find(Nodes, 100), Nodes, Acked)
    after 10000 -> io:format("no ack for ~p~n", [K]), halt(11)
    end.

check(P, K) ->
    P ! {get, self(), K},
    V = 10 * K,
    receive
        {kv_val, K, V} -> ok;
        {kv_val, K, Other} -> io:format("lost ~p: ~p~n", [K, Other]), halt(12)
    after 5000 -> io:format("no answer for ~p~n", [K]), halt(13)
    end.
