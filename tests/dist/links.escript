#!/usr/bin/env escript
-mode(compile). %% not erl_eval: it matched <<>> against <<"hi">>
%% Links and monitors across nodes. Erlang links to the krill process
%% `target` and sees it exit with {krill, 40}; the krill process `watcher`
%% links to and monitors two Erlang processes: Victim exits with bye, Stay
%% outlives the connection (the test then checks noconnection on the krill
%% side; the krill side also checks the DOWN with bye for Victim).
%% Exit 0 when all Erlang saw is right.
main([Krill]) ->
    K = list_to_atom(Krill),
    process_flag(trap_exit, true),
    {target, K} ! {hello, self()},
    P = receive {reply, Pid} -> Pid after 10000 -> halt(2) end,
    link(P),
    Victim = spawn(fun() -> receive go -> exit(bye) end end),
    Stay = spawn(fun() -> receive never -> ok end end),
    {watcher, K} ! {watch, self(), Victim, Stay},
    receive {krill, 5, <<>>} -> ok after 10000 -> halt(3) end,
    Victim ! go,
    P ! {krill, 20, <<>>},
    receive {'EXIT', P, {krill, 40}} -> ok after 10000 -> halt(5) end,
    timer:sleep(500),
    halt(0).
