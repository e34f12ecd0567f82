#!/usr/bin/env escript
-mode(compile). %% not erl_eval: it matched <<>> against <<"hi">>
%% For krilltop's node view (tests/test_krilltop.sh): pings the process
%% registered as `box` on the krill node (tests/dist_peer.c) ten times,
%% each answered with {pong, Box, N}, prints "ready" and keeps the
%% connection up until stopped or 60 s pass. Exit 2: no answer.
main([Krill]) ->
    K = list_to_atom(Krill),
    [begin
         {box, K} ! {ping, self(), N},
         receive {pong, _, N} -> ok after 10000 -> halt(2) end
     end || N <- lists:seq(1, 10)],
    io:format("ready~n"),
    receive stop -> ok after 60000 -> ok end,
    halt(0).
