/* A tiny UDP echo server and client for network tests: busybox has no UDP tool.
 *   udptool serve PORT PREFIX       answer each datagram with PREFIX + datagram
 *   udptool send HOST PORT MESSAGE  send one datagram, print the answer (2 s timeout) */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    char buf[512], out[1024];
    struct sockaddr_in addr = {.sin_family = AF_INET};
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0) return 2;
    if (argc == 4 && strcmp(argv[1], "serve") == 0) {
        addr.sin_port = htons(atoi(argv[2]));
        if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0) return 3;
        for (;;) {
            struct sockaddr_in peer;
            socklen_t len = sizeof peer;
            ssize_t n = recvfrom(fd, buf, sizeof buf - 1, 0, (struct sockaddr *)&peer, &len);
            if (n < 0) continue;
            buf[n] = 0;
            int m = snprintf(out, sizeof out, "%s%s", argv[3], buf);
            sendto(fd, out, m, 0, (struct sockaddr *)&peer, len);
        }
    }
    if (argc == 5 && strcmp(argv[1], "send") == 0) {
        struct timeval tv = {.tv_sec = 2};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        addr.sin_port = htons(atoi(argv[3]));
        if (inet_pton(AF_INET, argv[2], &addr.sin_addr) != 1) return 4;
        if (sendto(fd, argv[4], strlen(argv[4]), 0, (struct sockaddr *)&addr, sizeof addr) < 0)
            return 5;
        ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
        if (n < 0) return 1;
        buf[n] = 0;
        printf("%s\n", buf);
        return 0;
    }
    fprintf(stderr, "usage: udptool serve PORT PREFIX | send HOST PORT MESSAGE\n");
    return 64;
}
